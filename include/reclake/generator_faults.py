"""The faults the generator injects into landing lines, one function per family.

Every variant breaks the landing contract (reclake.contract) unambiguously: no variant relies on
a lenient parser rejecting it (no single quotes, no top-level arrays, no naive timestamps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reclake import contract

# Lines that are not a JSON object at all.
MALFORMED_KINDS = ("truncated", "not_json")
# JSON objects that break the contract; the report counts lines per kind.
BAD_FIELD_KINDS = (
    "missing_field",  # a required field is absent
    "wrong_type",  # an integer field holds a string ("12") or a fraction (1.5)
    "out_of_range",  # id < 1, position / watch_ms outside the contract's range, bad id length
    "unknown_event_type",  # event_type outside contract.EVENT_TYPES
    "bad_timestamp",  # event_time that is not an ISO-8601 time
    "future_timestamp",  # well-formed event_time days to years after the landing hour
)

ALWAYS_REQUIRED = tuple(f.name for f in contract.EVENT_FIELDS if f.required == "always")
UNKNOWN_EVENT_TYPES = ("click", "view", "purchase", "dwell")
FUTURE_MS = (24 * 3600 * 1000, 3 * 365 * 24 * 3600 * 1000)
NOT_JSON = (
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "event_id={event_id} event_type={event_type} user_id={user_id} item_id={item_id}",
    "{event_id},{event_type},{event_time},{user_id},{item_id},{request_id}",
)


def iso_ms(ms: int) -> str:
    """Render milliseconds since the epoch as ISO-8601 UTC with milliseconds and a Z."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _pick(options: tuple[Any, ...] | list[Any], u: float) -> Any:
    return options[min(int(u * len(options)), len(options) - 1)]


def _conditional(record: dict[str, Any]) -> list[str]:
    """Fields the record's event type requires beyond the always-required ones."""
    return [
        f.name
        for f in contract.EVENT_FIELDS
        if f.required == record["event_type"] and f.name in record
    ]


def bad_field_line(record: dict[str, Any], kind: str, u: float, arrival_ms: int) -> str:
    """A JSON object line that breaks the contract in the way `kind` names."""
    bad = dict(record)
    if kind == "missing_field":
        del bad[_pick([*ALWAYS_REQUIRED, *_conditional(record)], u)]
    elif kind == "wrong_type":
        fields = ["user_id", "item_id", *_conditional(record)]
        name, as_text = _pick([(f, t) for f in fields for t in (True, False)], u)
        bad[name] = str(record[name]) if as_text else record[name] + 0.5
    elif kind == "out_of_range":
        options: list[tuple[str, Any]] = [
            ("user_id", 0),
            ("user_id", -record["user_id"]),
            ("item_id", 0),
            ("event_id", ""),
            ("event_id", "e" * (contract.MAX_ID_LENGTH + 1)),
        ]
        if "position" in record:
            options += [("position", -1), ("position", contract.MAX_POSITION + 1)]
        if "watch_ms" in record:
            options += [("watch_ms", -1), ("watch_ms", contract.MAX_WATCH_MS + 1)]
        name, value = _pick(options, u)
        bad[name] = value
    elif kind == "unknown_event_type":
        bad["event_type"] = _pick(UNKNOWN_EVENT_TYPES, u)
    elif kind == "bad_timestamp":
        day = record["event_time"][:10]
        bad["event_time"] = _pick(
            ("not-a-time", "yesterday", f"{day}T25:61:00.000Z", "2026-13-40T10:00:00.000Z"), u
        )
    elif kind == "future_timestamp":
        # Past the end of the landing hour by far more than any allowed clock skew.
        ahead = FUTURE_MS[0] + int(u * (FUTURE_MS[1] - FUTURE_MS[0]))
        bad["event_time"] = iso_ms(arrival_ms + 3_600_000 + ahead)
    else:
        raise ValueError(f"unknown bad-field kind {kind!r}")
    return json.dumps(bad, separators=(",", ":"))


def malformed_line(valid_line: str, record: dict[str, Any], kind: str, u: float) -> str:
    """A line that is not a JSON object: a truncated record or a foreign log format."""
    if kind == "truncated":
        # Any proper prefix of a JSON object lacks its closing brace.
        return valid_line[: 1 + int(u * (len(valid_line) - 2))]
    if kind == "not_json":
        return _pick(NOT_JSON, u).format(**record)
    raise ValueError(f"unknown malformed kind {kind!r}")
