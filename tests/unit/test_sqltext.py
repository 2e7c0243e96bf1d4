"""The SQL text reclake builds takes only typed values: a string, a naive or non-UTC time, or an
odd column name never reaches Spark's parser; and no other module writes SQL literals."""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from reclake import sqltext


def h(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, error",
    [
        ("2026-11-20 00:00:00", TypeError),  # text, even well-formed, must be parsed first
        ("2026-11-20' OR '1'='1", TypeError),  # the injection the rule keeps out
        (date(2026, 11, 20), TypeError),  # a date is not a time
        (datetime(2026, 11, 20), ValueError),  # naive: which zone?
        (datetime(2026, 11, 20, tzinfo=timezone(timedelta(hours=2))), ValueError),  # not UTC
    ],
)
def test_timestamp_literals_take_only_aware_utc_datetimes(value, error):
    with pytest.raises(error):
        sqltext.timestamp(value)


def test_timestamp_and_date_literals():
    assert sqltext.timestamp(h(20, 5)) == "TIMESTAMP '2026-11-20 05:00:00'"
    at = h(20, 5) + timedelta(microseconds=7)
    assert sqltext.timestamp(at) == "TIMESTAMP '2026-11-20 05:00:00.000007'"
    assert sqltext.date_literal(date(2026, 11, 20)) == "DATE '2026-11-20'"
    with pytest.raises(TypeError):
        sqltext.date_literal(h(20, 0))  # a datetime's day depends on its zone
    with pytest.raises(TypeError):
        sqltext.date_literal("2026-11-20")


@pytest.mark.parametrize("name", ["x; DROP TABLE t", "a b", "`x`", "1abc", "", "hour--"])
def test_column_names_are_plain_identifiers(name):
    with pytest.raises(ValueError):
        sqltext.time_range(name, h(20, 0), h(20, 1))


def test_hour_ranges_bound_hours_and_their_date_partitions():
    text = sqltext.hour_ranges([(h(20, 22), h(21, 2)), (h(23, 0), h(23, 1))], "hour", "date")
    assert text == (
        "(date >= DATE '2026-11-20' AND date <= DATE '2026-11-21'"
        " AND hour >= TIMESTAMP '2026-11-20 22:00:00' AND hour < TIMESTAMP '2026-11-21 02:00:00')"
        " OR (date >= DATE '2026-11-23' AND date <= DATE '2026-11-23'"
        " AND hour >= TIMESTAMP '2026-11-23 00:00:00' AND hour < TIMESTAMP '2026-11-23 01:00:00')"
    )
    assert sqltext.hour_ranges([], "hour", "date") == "FALSE"
    assert sqltext.hours_in([h(21, 3), h(20, 23)], "hour", "date") == (
        "date IN (DATE '2026-11-20', DATE '2026-11-21') AND hour IN"
        " (TIMESTAMP '2026-11-21 03:00:00', TIMESTAMP '2026-11-20 23:00:00')"
    )


def test_no_other_module_writes_sql_literals():
    # Literals written anywhere else could take text unchecked; sqltext is the one door.
    package = Path(sqltext.__file__).parent
    # (Delta's lower-case "interval N days" table properties are values, quoted by io.)
    literal = re.compile(r"(?i:\b(TIMESTAMP|DATE)\s*')|\bINTERVAL\s+[{\d]")
    offenders = [
        f"{p.relative_to(package)}:{n}"
        for p in sorted(package.rglob("*.py"))
        if p.name != "sqltext.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []
