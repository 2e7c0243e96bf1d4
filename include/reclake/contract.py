"""The landing input contract: what a raw interaction record and a dimension record must be.

One definition serves the generator, the ingest validation and the README's contract table.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES = ("impression", "play", "like", "share", "skip")
ACTION_TYPES = tuple(t for t in EVENT_TYPES if t != "impression")

# Upper bound for watch_ms: no single play lasts more than a day.
MAX_WATCH_MS = 24 * 3600 * 1000
MAX_POSITION = 999
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class FieldSpec:
    """One field of a landing record."""

    name: str
    json_type: str  # "string" | "integer"
    required: str  # "always" | event type that requires it | "optional"
    description: str


EVENT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "event_id",
        "string",
        "always",
        f"Globally unique id of the event (1-{MAX_ID_LENGTH} chars); the dedupe key.",
    ),
    FieldSpec("event_type", "string", "always", "One of: " + ", ".join(EVENT_TYPES) + "."),
    FieldSpec(
        "event_time",
        "string",
        "always",
        "When it happened: ISO-8601 with a zone, e.g. 2026-11-20T13:05:09.123Z "
        "(offsets such as +02:00 are converted to UTC).",
    ),
    FieldSpec("user_id", "integer", "always", "User id, 64-bit integer >= 1."),
    FieldSpec("item_id", "integer", "always", "Item (video) id, 64-bit integer >= 1."),
    FieldSpec(
        "request_id",
        "string",
        "always",
        "Id of the feed request that showed the item; actions carry the id of the "
        "request whose impression they follow.",
    ),
    FieldSpec(
        "position",
        "integer",
        "impression",
        f"Rank of the item in the request, 0-{MAX_POSITION}; required for impressions.",
    ),
    FieldSpec(
        "watch_ms",
        "integer",
        "play",
        f"Milliseconds watched, 0-{MAX_WATCH_MS}; required for plays.",
    ),
)

DEVICES = ("android", "ios", "web")
AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45+")

USER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("user_id", "integer", "always", "User id, >= 1."),
    FieldSpec("country", "string", "always", "ISO-3166 alpha-2 country code."),
    FieldSpec("device", "string", "always", "android, ios or web."),
    FieldSpec("age_bucket", "string", "always", "One of 13-17, 18-24, 25-34, 35-44, 45+."),
    FieldSpec("signup_time", "string", "always", "ISO-8601 UTC time of sign-up."),
)

ITEM_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("item_id", "integer", "always", "Item id, >= 1."),
    FieldSpec("category", "string", "always", "Content category, e.g. music, comedy."),
    FieldSpec("duration_ms", "integer", "always", "Length of the video in milliseconds, > 0."),
    FieldSpec("creator_id", "integer", "always", "Id of the uploader."),
    FieldSpec("created_at", "string", "always", "ISO-8601 UTC time the item was published."),
)

# Landing layout, relative to the landing root.
EVENTS_DROP = "events/date={date}/hour={hour:02d}"
USERS_DROP = "dims/users"
ITEMS_DROP = "dims/items"
