"""UTC time helpers: parsing interval bounds and walking whole hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def parse_utc(value: str | datetime) -> datetime:
    """Parse an ISO-8601 time (naive means UTC) into an aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    # A plain datetime even for a pendulum input: the two do not always compare.
    return datetime(*dt.timetuple()[:6], dt.microsecond, tzinfo=UTC)


def floor_hour(dt: datetime) -> datetime:
    """`hour(t)`: t floored to the hour, in UTC."""
    return parse_utc(dt).replace(minute=0, second=0, microsecond=0)


class IntervalError(ValueError):
    """An interval that is not a run of whole UTC hours: a usage error at the edge."""


def hours_between(start: datetime | str, end: datetime | str) -> Iterator[datetime]:
    """Yield the hour starts in [start, end); both bounds must be whole hours."""
    s, e = parse_utc(start), parse_utc(end)
    if s != floor_hour(s) or e != floor_hour(e):
        raise IntervalError(f"interval bounds must be whole hours, got [{s}, {e})")
    if e < s:
        raise IntervalError(f"interval end {e} is before its start {s}")
    h = s
    while h < e:
        yield h
        h += HOUR


def iso(dt: datetime) -> str:
    """Render a UTC datetime as ISO-8601 with a Z suffix."""
    return parse_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def chunks(
    start: datetime | str, end: datetime | str, hours: int
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive whole-hour pieces of at most `hours` hours."""
    if hours < 1:
        raise ValueError(f"chunk hours must be >= 1, got {hours}")
    bounds = list(hours_between(start, end))[::hours]
    return [(lo, min(lo + hours * HOUR, parse_utc(end))) for lo in bounds]
