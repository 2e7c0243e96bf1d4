"""The SQL text reclake builds (replaceWhere and filter predicates), in one place (pure).

Every literal comes from a typed value, never from text a user typed: timestamps from aware
UTC datetimes, dates from dates, column names from the identifiers the code declares. A
string where a value belongs is a TypeError, so nothing from a CLI argument, a DAG param or a
file name can reach Spark's parser without being parsed into a datetime first
(docs/reliability.md, "Security checks").
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ONE_US = timedelta(microseconds=1)


def identifier(name: str) -> str:
    """A column name as it may appear in reclake's SQL text (letters, digits, underscore)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain column name")
    return name


def timestamp(value: datetime) -> str:
    """A Spark SQL timestamp literal of an aware UTC datetime (the session time zone is UTC)."""
    if not isinstance(value, datetime):
        raise TypeError(f"a timestamp literal needs a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"a timestamp literal needs a UTC datetime, got {value!r}")
    text = f"{value:%Y-%m-%d %H:%M:%S}"
    return (
        f"TIMESTAMP '{text}.{value.microsecond:06d}'"
        if value.microsecond
        else (f"TIMESTAMP '{text}'")
    )


def date_literal(value: date) -> str:
    """A Spark SQL date literal of a date (a datetime is refused: its day is ambiguous)."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"a date literal needs a date, got {type(value).__name__}")
    return f"DATE '{value.isoformat()}'"


def minutes(value: int) -> str:
    """A Spark SQL interval literal of whole minutes."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"an interval needs an int of minutes, got {type(value).__name__}")
    return f"INTERVAL {value} MINUTES"


def time_range(column: str, lo: datetime, hi: datetime) -> str:
    """`column` in [lo, hi)."""
    col = identifier(column)
    return f"{col} >= {timestamp(lo)} AND {col} < {timestamp(hi)}"


def dates_of_range(column: str, lo: datetime, hi: datetime) -> str:
    """The date partitions `column` of the times [lo, hi), for pruning."""
    col = identifier(column)
    first, last = lo.date(), (hi - _ONE_US).date()
    return f"{col} >= {date_literal(first)} AND {col} <= {date_literal(last)}"


def hours_in(hours: list[datetime], hour_col: str, date_col: str) -> str:
    """Exactly these hours, with their date partitions for pruning."""
    dates = ", ".join(date_literal(d) for d in sorted({h.date() for h in hours}))
    stamps = ", ".join(timestamp(h) for h in hours)
    return f"{identifier(date_col)} IN ({dates}) AND {identifier(hour_col)} IN ({stamps})"


def hour_ranges(ranges: list[tuple[datetime, datetime]], hour_col: str, date_col: str) -> str:
    """The hours of some [lo, hi) ranges, with date bounds for pruning; its size follows the
    number of ranges, not of hours (long intervals stay one short filter)."""
    # No BETWEEN: Delta's replaceWhere check cannot resolve it (Spark 4 rewrites it).
    parts = [
        f"({dates_of_range(date_col, lo, hi)} AND {time_range(hour_col, lo, hi)})"
        for lo, hi in ranges
    ]
    return " OR ".join(parts) if parts else "FALSE"
