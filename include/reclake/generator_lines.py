"""JSON lines for generated records, rendered column-wise with numpy (no per-row dict or
json.dumps on the hot path), plus per-row records for the few faulty lines.

Rows are grouped by the width of every field (digit counts, vocabulary word); inside a group every
line has the same length, so a group is one (rows, width) byte matrix filled column block by
column block. Lines therefore come out grouped, not in row order; callers shuffle drops anyway.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from reclake import contract
from reclake.generator_events import EventBatch
from reclake.generator_world import CATEGORIES, COUNTRIES, Items, Users

_POWERS_OF_TEN = 10 ** np.arange(19, dtype=np.int64)


def _ascii(text: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), np.uint8), (n, len(text)))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, zero-padded."""
    return (48 + values[:, None] // _POWERS_OF_TEN[width - 1 :: -1][:width] % 10).astype(np.uint8)


def _words(chars: np.ndarray) -> np.ndarray:
    """View each row of 8 ASCII bytes as one uint64, so copying a row is one element copy."""
    return np.ascontiguousarray(chars, dtype=np.uint8).view(np.uint64)[:, 0]


def hex_chars(raw: np.ndarray) -> np.ndarray:
    """(n, 2k) lower-case hex digits of an (n, k) uint8 array."""
    chars = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
    for column, nibbles in ((0, raw >> 4), (1, raw & 15)):
        # '0'..'9' are ASCII 48..57, 'a'..'f' 97..102
        chars[:, column::2] = nibbles + np.uint8(48) + (nibbles > 9).astype(np.uint8) * 39
    return chars


_MS_OF_MINUTE = np.arange(60_000)
# ":SS.mmmZ" for every millisecond of a minute: the last 8 bytes of a timestamp.
_MINUTE_TAILS = _words(
    np.hstack(
        [
            _ascii(":", 60_000),
            _digits(_MS_OF_MINUTE // 1000, 2),
            _ascii(".", 60_000),
            _digits(_MS_OF_MINUTE % 1000, 3),
            _ascii("Z", 60_000),
        ]
    )
)
_MINUTES = np.arange(1440)
# "\0\0\0HH:MM" for every minute of a day; OR-ed with "DDT\0\0\0\0\0" (disjoint bytes).
_MINUTE_WORDS = _words(
    np.hstack(
        [
            np.zeros((1440, 3), np.uint8),
            _digits(_MINUTES // 60, 2),
            _ascii(":", 1440),
            _digits(_MINUTES % 60, 2),
        ]
    )
)


def timestamp_chars(ms: np.ndarray) -> np.ndarray:
    """(n, 24) ISO-8601 UTC renderings of epoch milliseconds, e.g. 2026-11-20T13:05:09.123Z.

    A timestamp is three 8-byte words ("YYYY-MM-", "DDTHH:MM", ":SS.mmmZ") looked up in small
    tables, far faster than formatting each value.
    """
    ms = np.asarray(ms, dtype=np.int64)
    if len(ms) == 0:
        return np.empty((0, 24), np.uint8)
    days, in_day = np.divmod(ms, 86_400_000)
    minute, ms_of_minute = np.divmod(in_day, 60_000)
    first_day = int(days.min())
    day_index = days - first_day
    n_days = int(day_index.max()) + 1
    if n_days > 4 * len(ms):  # days far apart: tabulate only those present
        present, day_index = np.unique(days, return_inverse=True)
    else:
        present = first_day + np.arange(n_days)
    dates = np.datetime_as_string(present.astype("datetime64[D]")).astype("S10")
    date_chars = np.frombuffer(dates.tobytes(), np.uint8).reshape(-1, 10)
    n = len(present)
    day_words = _words(np.hstack([date_chars[:, 8:10], _ascii("T", n), np.zeros((n, 5), np.uint8)]))
    words = np.empty((len(ms), 3), dtype=np.uint64)
    words[:, 0] = _words(date_chars[:, :8])[day_index]
    words[:, 1] = day_words[day_index] | _MINUTE_WORDS[minute]
    words[:, 2] = _MINUTE_TAILS[ms_of_minute]
    return words.view(np.uint8).reshape(len(ms), 24)


@dataclass(frozen=True)
class Piece:
    """A field as written in one group of equal-width rows: constant text around a value."""

    before: bytes
    render: Callable[[], np.ndarray] | None = None  # the (rows, width) value bytes
    width: int = 0
    after: bytes = b""

    def size(self) -> int:
        """Bytes this piece takes in every row of the group."""
        return len(self.before) + self.width + len(self.after)


# Kinds of field value: fixed-width strings rendered from raw values, a vocabulary word, or an
# integer whose digit count varies.
HEX, TIME, WORD, INT = "hex", "time", "word", "int"


@dataclass(frozen=True)
class Field:
    """One JSON field for every row.

    hex: (n, k) uint8 written as a 2k-digit hex string; time: epoch ms written as an ISO string;
    word: codes into `vocabulary`; int: integers >= 0, where a negative value omits the field.
    """

    name: str
    kind: str
    values: np.ndarray
    vocabulary: Sequence[str] = ()

    def variants(self) -> tuple[np.ndarray, int]:
        """Per-row variant of this field's width, and how many variants there can be."""
        if self.kind == WORD:
            return self.values.astype(np.int64), len(self.vocabulary)
        if self.kind == INT:
            # digit count; 0 when absent
            count = np.searchsorted(_POWERS_OF_TEN, self.values, side="right")
            return np.where(self.values < 0, 0, np.maximum(count, 1)), len(_POWERS_OF_TEN) + 1
        return np.zeros(len(self.values), np.int64), 1

    def piece(self, lo: int, hi: int, variant: int, first: bool) -> Piece:
        """How this field is written in rows [lo, hi), which share one variant."""
        label = ("{" if first else ",") + f'"{self.name}":'
        if self.kind == WORD:
            return Piece(f'{label}"{self.vocabulary[variant]}"'.encode())
        if self.kind == INT:
            if variant == 0:
                return Piece(b"")
            return Piece(label.encode(), lambda: _digits(self.values[lo:hi], variant), variant)
        chars = self.text
        return Piece(f'{label}"'.encode(), lambda: chars[lo:hi], chars.shape[1], b'"')

    @cached_property
    def text(self) -> np.ndarray:
        """(n, width) ASCII of a hex or time field, rendered once for all groups."""
        return hex_chars(self.values) if self.kind == HEX else timestamp_chars(self.values)


def json_lines(fields: Sequence[Field]) -> pa.LargeStringArray:
    """One compact, newline-terminated JSON object per row, fields in the given order (the first
    is always present).

    Values are not escaped: the generator only writes hex ids, vocabulary words, numbers and
    timestamps.
    """
    n = len(fields[0].values)
    if n == 0:
        return pa.array([], pa.large_string())
    key = np.zeros(n, np.int64)
    for field in fields:
        variant, n_variants = field.variants()
        key = key * n_variants + variant
    order = np.argsort(key, kind="stable")
    key = key[order]
    fields = [Field(f.name, f.kind, f.values[order], f.vocabulary) for f in fields]
    variants = [f.variants()[0] for f in fields]
    bounds = [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), n]

    # Lay out every group first, so each one renders straight into the final buffer.
    layouts = []
    for lo, hi in itertools.pairwise(bounds):
        pieces = [
            f.piece(lo, hi, int(v[lo]), i == 0)
            for i, (f, v) in enumerate(zip(fields, variants, strict=True))
        ]
        pieces.append(Piece(b"}\n"))
        layouts.append((lo, hi, pieces, sum(p.size() for p in pieces)))
    lengths = np.repeat([w for *_, w in layouts], [hi - lo for lo, hi, *_ in layouts])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    data = np.empty(int(offsets[-1]), np.uint8)
    for lo, hi, pieces, width in layouts:
        _fill(data[offsets[lo] : offsets[hi]].reshape(hi - lo, width), pieces)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _fill(out: np.ndarray, pieces: Sequence[Piece]) -> None:
    """Write the rows of one group: the constant text as one template, then the values."""
    template = b"".join(p.before + b" " * p.width + p.after for p in pieces)
    out[:] = np.frombuffer(template, np.uint8)
    at = 0
    for piece in pieces:
        at += len(piece.before)
        if piece.render is not None:
            out[:, at : at + piece.width] = piece.render()
        at += piece.width + len(piece.after)


def _event_fields(batch: EventBatch, rows: np.ndarray) -> list[Field]:
    return [
        Field("event_id", HEX, batch.event_ids[rows]),
        Field("event_type", WORD, batch.event_type[rows], contract.EVENT_TYPES),
        Field("event_time", TIME, batch.time_ms[rows]),
        Field("user_id", INT, batch.user_id[rows]),
        Field("item_id", INT, batch.item_id[rows]),
        Field("request_id", HEX, batch.request_ids[batch.request[rows]]),
        Field("position", INT, batch.position[rows]),
        Field("watch_ms", INT, batch.watch_ms[rows]),
    ]


def event_lines(batch: EventBatch, rows: np.ndarray) -> pa.LargeStringArray:
    """Contract-conforming JSON lines for the given event rows (grouped, not in row order)."""
    return json_lines(_event_fields(batch, rows))


def event_records(batch: EventBatch, rows: np.ndarray) -> list[dict[str, Any]]:
    """The records of the given rows as dicts, in row order (what their valid lines hold)."""
    records = []
    columns = zip(
        hex_chars(batch.event_ids[rows]).view("S32").ravel().tolist(),
        timestamp_chars(batch.time_ms[rows]).view("S24").ravel().tolist(),
        hex_chars(batch.request_ids[batch.request[rows]]).view("S16").ravel().tolist(),
        batch.event_type[rows].tolist(),
        batch.user_id[rows].tolist(),
        batch.item_id[rows].tolist(),
        batch.position[rows].tolist(),
        batch.watch_ms[rows].tolist(),
        strict=True,
    )
    for event_id, event_time, request_id, kind, user, item, position, watch in columns:
        record = {
            "event_id": event_id.decode(),
            "event_type": contract.EVENT_TYPES[kind],
            "event_time": event_time.decode(),
            "user_id": user,
            "item_id": item,
            "request_id": request_id.decode(),
        }
        if position >= 0:
            record["position"] = position
        if watch >= 0:
            record["watch_ms"] = watch
        records.append(record)
    return records


def record_line(record: dict[str, Any]) -> str:
    """A record as one compact JSON object, exactly as the column-wise renderer writes it."""
    return json.dumps(record, separators=(",", ":"))


def user_lines(users: Users) -> pa.LargeStringArray:
    """The user dimension as JSON lines (user_id = row + 1)."""
    return json_lines(
        [
            Field("user_id", INT, np.arange(1, len(users.country) + 1)),
            Field("country", WORD, users.country, COUNTRIES),
            Field("device", WORD, users.device, contract.DEVICES),
            Field("age_bucket", WORD, users.age, contract.AGE_BUCKETS),
            Field("signup_time", TIME, users.signup_ms),
        ]
    )


def item_lines(items: Items) -> pa.LargeStringArray:
    """The item dimension as JSON lines."""
    return json_lines(
        [
            Field("item_id", INT, items.item_id),
            Field("category", WORD, items.category, CATEGORIES),
            Field("duration_ms", INT, items.duration_ms),
            Field("creator_id", INT, items.creator_id),
            Field("created_at", TIME, items.created_ms),
        ]
    )


def text_bytes(lines: pa.LargeStringArray) -> memoryview:
    """The newline-terminated lines as one text, without copying."""
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], np.int64)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end]
