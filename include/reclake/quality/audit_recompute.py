"""Expected training-sample rows recomputed straight from bronze/events and the dimensions,
for the audit's few sampled impressions.

Deliberately plain and independent of the production path: no Spark, no tiles, no window
state, no code from features/tiles.py, state.py, samples.py or labels.py; only the feature
definitions (what the features are) and the config (attribution window). Bronze is read
without a JVM (delta-rs lists the files of its current version, pyarrow reads them), only in
the event_date partitions the sample needs and only in the columns it needs:

- once for the sampled impressions themselves, in their own 1-2 dates: the true keys;
- once for everything else (the look-back before the sampled hours through the attribution
  window after them). Batch by batch as it is read, the sampled users' events are kept, the
  sampled items' events are summed per (item, hour, event type) and the actions on the
  sampled (request, item) pairs are kept for the labels. A sample drawn from impressions is
  drawn towards popular items, so the items' events are most of bronze; only their sums go on.

Every value of a sampled row is then summed or picked from those with numpy and plain
Python, so the audit's cost is the scan (docs/quality.md, "What it costs").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from reclake import contract
from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    ITEM_CATEGORY_PLAYS,
    OTHER_CATEGORY,
    SEQUENCE_COLUMN,
    SEQUENCE_LEN_COLUMN,
    Entity,
    FeatureDefinitions,
    category_tile_column,
    window_column,
)
from reclake.tables import table

US_PER_HOUR = 3_600_000_000
# finished: the longest attributed play reaches 90 % of the item (docs/labels.md).
FINISHED_SHARE = (9, 10)
KEY_COLUMNS = (
    "event_id",
    "request_id",
    "user_id",
    "item_id",
    "position",
    "event_time",
    "event_hour",
    "sample_date",
)


@dataclass(frozen=True)
class Probe:
    """One sampled row as the recompute needs it: its key and (for choosing partitions) its
    hour and time as the samples table holds them."""

    event_id: str
    hour_us: int
    time_us: int


@dataclass(frozen=True)
class HourRows:
    """One entity's events summed per hour: sorted hours and one column per aggregation."""

    hours: np.ndarray  # int64 microseconds, ascending
    sums: np.ndarray  # int64, (hours, aggregations)


def as_text(micros: int) -> str:
    """A UTC timestamp as the audit compares it: ISO text with microseconds, exact."""
    t = _at(micros)
    return f"{t.year:04d}-{t.strftime('%m-%dT%H:%M:%S')}.{t.microsecond:06d}Z"


def bronze_dates(probes: list[Probe], lookback_hours: int, window_minutes: int) -> list[date]:
    """event_date partitions the probes need: hour(t) - look-back .. t + attribution window."""
    needed: set[date] = set()
    for p in probes:
        day = _at(p.hour_us - lookback_hours * US_PER_HOUR).date()
        last = (_at(p.time_us) + timedelta(minutes=window_minutes)).date()
        while day <= last:
            needed.add(day)
            day += timedelta(days=1)
    return sorted(needed)


def recompute(
    settings: Settings,
    probes: list[Probe],
    dims_versions: list[tuple[int, int]],
    definitions: FeatureDefinitions = DEFINITIONS,
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Expected rows per event id, one per (users, items) version pair of `dims_versions`,
    and the number of bronze date partitions read. An event id without an on-time impression
    in bronze gets no entry."""
    dates = bronze_dates(
        probes, definitions.max_lookback_hours, settings.attribution_window_minutes
    )
    bronze_uri = table("events").uri(settings)
    bronze = _dataset(bronze_uri)
    # An impression lives in its own event_date: 1-2 of the look-back's dates, not all 8.
    # A sampled row whose time was moved to another day is then not found: still a mismatch.
    own = sorted({_at(t).date() for p in probes for t in (p.time_us, p.hour_us)})
    truth = _impressions(bronze, bronze_uri, own, [p.event_id for p in probes])
    if not truth:
        return {}, len(dates)
    user, item = (next(e for e in definitions.entities if e.key == k) for k in _ENTITY_KEYS)
    scan = _scan(bronze, bronze_uri, dates, list(truth.values()), definitions)
    hour_rows = {user.name: scan.user_sums, item.name: scan.item_sums}
    plays = _plays_by_user(scan.user_plays)
    actions = _actions_by_pair(scan.actions)
    window_us = settings.attribution_window_minutes * 60_000_000
    users, items = _dimensions(settings, list(truth.values()), dims_versions)
    played = np.unique(np.concatenate([p.items for p in plays.values()] or [np.array([], int)]))
    buckets = {
        v: _buckets(settings, v, played, definitions) for v in sorted({i for _, i in dims_versions})
    }

    expected: dict[str, list[dict[str, Any]]] = {}
    for event_id, t in truth.items():
        hour_us = t["_t_us"] - t["_t_us"] % US_PER_HOUR
        features: dict[str, Any] = {}
        for e in (user, item):
            features.update(
                _window_features(hour_rows[e.name].of(t[e.key]), hour_us, e, definitions)
            )
        mine = plays.get(t[user.key])
        if user.play_sequence:
            features[SEQUENCE_COLUMN] = _newest_plays(mine, hour_us, definitions)
            features[SEQUENCE_LEN_COLUMN] = len(features[SEQUENCE_COLUMN])
        attributed = _attributed(actions.get((t["request_id"], t["item_id"]), []), t, window_us)
        rows = []
        for users_v, items_v in dims_versions:
            it = items[items_v].get(t["item_id"])
            row = {k: t[k] for k in KEY_COLUMNS}
            row.update(_labels_of(attributed, it))
            row.update(features)
            if user.category_plays:
                counts = _category_counts(mine, hour_us, buckets[items_v], definitions)
                row.update(_category_features(counts, it, user, definitions))
            row.update(_static(t, it, users[users_v].get(t["user_id"])))
            rows.append(row)
        expected[event_id] = rows
    return expected, len(dates)


# ---- reading bronze ---------------------------------------------------------------------------

_ENTITY_KEYS = ("user_id", "item_id")
ACTIONS = contract.ACTION_TYPES
_ON_TIME = ~ds.field("beyond_lateness")


class HourSums:
    """Some entities' events summed per (entity, hour) for every aggregation: the input of
    every window feature. Dense (aggregations x entities x hours of the scanned dates), so a
    batch adds in with one bincount per aggregation; 8 bytes a cell (1,000 sampled entities
    over a day's 9 dates and 6 aggregations: 10 MB)."""

    def __init__(self, keys: pa.Array, dates: list[date], definitions: FeatureDefinitions):
        self.keys = keys  # sorted, distinct
        self.hours = (_midnights(dates)[:, None] + np.arange(24) * US_PER_HOUR).reshape(-1)
        shape = (len(definitions.aggregations), len(keys), len(self.hours))
        self.sums = np.zeros(shape, dtype=np.int64)

    def add(
        self, entity: np.ndarray, hour: np.ndarray, terms: list[tuple[np.ndarray, Any]]
    ) -> None:
        """Add a batch: per event, its entity's index in `keys` (-1: none of them) and its
        hour's index; per aggregation, which events it takes and their values (None: it
        counts them)."""
        theirs = entity >= 0
        cell = entity * len(self.hours) + hour
        for j, (takes, values) in enumerate(terms):
            mine = theirs & takes
            picked = None if values is None else values[mine]
            self.sums[j].reshape(-1)[:] += _exact_bincount(cell[mine], picked, self.sums[j].size)

    def of(self, key: int) -> HourRows | None:
        """One entity's hours and sums (None: not one of these entities)."""
        found = pc.index_in(pa.array([key], pa.int64()), value_set=self.keys)[0].as_py()
        return None if found is None else HourRows(self.hours, self.sums[:, found, :].T)


def _midnights(dates: list[date]) -> np.ndarray:
    """The first microsecond of each of the dates (UTC)."""
    days = [int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) for d in dates]
    return np.array(days, dtype=np.int64) * 1_000_000


def _hour_index(t_us: np.ndarray, dates: list[date]) -> np.ndarray:
    """The index of each time's hour among the dates' hours (24 per date, in date order);
    bronze's event_date partition is its time's date, so every time falls on one of them."""
    day_us = 24 * US_PER_HOUR
    first = int(_midnights(dates[:1])[0]) // day_us
    position = np.full(int(_midnights(dates[-1:])[0]) // day_us - first + 1, -1, np.int64)
    position[_midnights(dates) // day_us - first] = np.arange(len(dates))
    day = t_us // day_us - first
    inside = (day >= 0) & (day < len(position))
    if not inside.all() or (position[day] < 0).any():
        raise ValueError("bronze holds an event whose event_date is not its time's date")
    return position[day] * 24 + (t_us % day_us) // US_PER_HOUR


def _exact_bincount(cells: np.ndarray, values: np.ndarray | None, size: int) -> np.ndarray:
    """Per cell, how many events (values None) or the sum of their values, exactly."""
    if values is None:
        return np.bincount(cells, minlength=size)
    if len(values) and int(np.abs(values).max()) * len(values) >= 2**53:
        out = np.zeros(size, dtype=np.int64)  # beyond a double's exact integers
        np.add.at(out, cells, values)
        return out
    return np.bincount(cells, weights=values, minlength=size).astype(np.int64)


@dataclass(frozen=True)
class Scan:
    """What the one pass over the look-back's bronze keeps."""

    user_sums: HourSums  # the sampled users' events per hour
    item_sums: HourSums  # the sampled items' events per hour
    user_plays: pa.Table  # the sampled users' plays: user_id, item_id, _t_us, event_id
    actions: pa.Table  # actions on the sampled (request_id, item_id) pairs


def _dataset(uri: str, version: int | None = None) -> ds.Dataset:
    """A table version (default current) as a pyarrow dataset (files listed by delta-rs)."""
    from reclake.snapshots.deltars import open_table
    from reclake.storagefault import guarded

    with guarded(uri):
        return open_table(uri, version).to_pyarrow_dataset()


def read_version(
    uri: str, version: int, where: ds.Expression, columns: list[str] | None = None
) -> pa.Table:
    """The rows of a table version that match `where`, read JVM-free; a storage fault is
    one line naming the table."""
    from reclake.storagefault import guarded

    dataset = _dataset(uri, version)
    with guarded(uri):
        return dataset.to_table(columns=columns, filter=where)


def scan_version(
    uri: str, version: int, where: ds.Expression | None, columns: list[str]
) -> Iterator[pa.RecordBatch]:
    """The rows of a table version that match `where`, batch by batch (memory bounded by
    a batch), read JVM-free; a storage fault is one line naming the table."""
    from reclake.storagefault import guarded

    dataset = _dataset(uri, version)
    with guarded(uri):
        yield from dataset.to_batches(columns=columns, filter=where)


def _dates_filter(dates: list[date]) -> ds.Expression:
    return ds.field("event_date").isin(pa.array(dates, pa.date32())) & _ON_TIME


def _impressions(
    bronze: ds.Dataset, uri: str, dates: list[date], event_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The sampled impressions as bronze holds them (on time only): the true keys."""
    from reclake.storagefault import guarded

    wanted = (
        _dates_filter(dates)
        & (ds.field("event_type") == "impression")
        & ds.field("event_id").isin(pa.array(sorted(set(event_ids)), pa.string()))
    )
    columns = ["event_id", "request_id", "user_id", "item_id", "position", "event_time"]
    with guarded(uri):
        found = bronze.to_table(columns=columns, filter=wanted)
    times = micros(found["event_time"]).to_pylist()
    truth = {}
    for row, t_us in zip(found.drop_columns(["event_time"]).to_pylist(), times, strict=True):
        hour_us = t_us - t_us % US_PER_HOUR
        row.update(
            _t_us=t_us,
            event_time=as_text(t_us),
            event_hour=as_text(hour_us),
            sample_date=_at(hour_us).date().isoformat(),
        )
        truth[row["event_id"]] = row
    return truth


def _scan(
    bronze: ds.Dataset,
    uri: str,
    dates: list[date],
    truth: list[dict[str, Any]],
    definitions: FeatureDefinitions,
) -> Scan:
    """One pass over the dates: the sampled users' and items' events summed per hour as
    they are read, the users' plays and the sampled requests' actions on their items kept."""
    from reclake.storagefault import guarded

    users, items = (pa.array(sorted({t[k] for t in truth}), pa.int64()) for k in _ENTITY_KEYS)
    requests = pa.array(sorted({t["request_id"] for t in truth}), pa.string())
    user_sums, item_sums = (HourSums(keys, dates, definitions) for keys in (users, items))
    # Event types by code: every type an aggregation, the sequence or the labels read.
    kinds = sorted({a.event_type for a in definitions.aggregations} | {"play", *ACTIONS})
    code = {kind: i for i, kind in enumerate(kinds)}
    sums = sorted({a.sum_of for a in definitions.aggregations if a.sum_of})
    columns = list(
        dict.fromkeys(["event_id", "event_type", "event_time", *_ENTITY_KEYS, "request_id", *sums])
    )
    wanted = _dates_filter(dates) & (
        ds.field("user_id").isin(users) | ds.field("item_id").isin(items)
    )
    plays, actions = [], []
    with guarded(uri):
        for batch in bronze.to_batches(columns=columns, filter=wanted):
            rows = pa.Table.from_batches([batch])
            rows = rows.append_column("_t_us", micros(rows["event_time"]))
            hour = _hour_index(_numpy(rows["_t_us"], 0), dates)
            # Indexes are -1 for a value not looked for; a null summed value adds nothing.
            kind = _numpy(pc.index_in(rows["event_type"], value_set=pa.array(kinds)), -1)
            summed = {c: _numpy(rows[c], 0) for c in sums}
            terms = [
                (kind == code[a.event_type], None if a.sum_of is None else summed[a.sum_of])
                for a in definitions.aggregations
            ]
            user = _numpy(pc.index_in(rows["user_id"], value_set=users), -1)
            item = _numpy(pc.index_in(rows["item_id"], value_set=items), -1)
            user_sums.add(user, hour, terms)
            item_sums.add(item, hour, terms)
            plays.append(rows.filter(pa.array((user >= 0) & (kind == code["play"]))))
            acted = np.isin(kind, [code[k] for k in ACTIONS]) & (item >= 0)
            candidates = rows.filter(pa.array(acted))
            actions.append(candidates.filter(pc.is_in(candidates["request_id"], requests)))
    empty = _empty(bronze.schema, columns)
    return Scan(
        user_sums=user_sums,
        item_sums=item_sums,
        user_plays=pa.concat_tables(plays or [empty]),
        actions=pa.concat_tables(actions or [empty]),
    )


def _numpy(values: pa.ChunkedArray | pa.Array, null: int) -> np.ndarray:
    """An integer column as int64 numpy, nulls replaced."""
    return np.asarray(pc.fill_null(values, null).to_numpy(), dtype=np.int64)


def _empty(schema: pa.Schema, columns: list[str]) -> pa.Table:
    """No rows, the scan's columns (a look-back whose bronze holds nothing relevant)."""
    rows = schema.empty_table().select(columns)
    return rows.append_column("_t_us", pa.array([], pa.int64()))


def micros(times: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Timestamps as int64 microseconds since the epoch (UTC)."""
    return pc.cast(pc.cast(times, pa.timestamp("us", tz="UTC")), pa.int64())


def _window_features(
    rows: HourRows | None, hour_us: int, entity: Entity, definitions: FeatureDefinitions
) -> dict[str, Any]:
    """Counts and sums over [hour(t) - W, hour(t)) (0 without events), ratios (None on a zero
    denominator)."""
    out: dict[str, Any] = {}
    for w in definitions.windows:
        if rows is None:
            totals = np.zeros(len(definitions.aggregations), np.int64)
        else:
            inside = (rows.hours >= hour_us - w.hours * US_PER_HOUR) & (rows.hours < hour_us)
            totals = rows.sums[inside].sum(axis=0)
        for j, a in enumerate(definitions.aggregations):
            out[window_column(entity, a.name, w)] = int(totals[j])
        for r in definitions.ratios:
            num = out[window_column(entity, r.numerator, w)]
            den = out[window_column(entity, r.denominator, w)]
            out[window_column(entity, r.name, w)] = num / den if den else None
    return out


@dataclass(frozen=True)
class Plays:
    """One user's plays, newest first; equal times: the larger event id first."""

    times: np.ndarray  # int64 microseconds, descending
    items: np.ndarray  # int64


def _plays_by_user(plays: pa.Table) -> dict[int, Plays]:
    """The sampled users' plays, per user, newest first."""
    newest_first = [("user_id", "ascending"), ("_t_us", "descending"), ("event_id", "descending")]
    plays = plays.sort_by(newest_first)
    users = plays["user_id"].to_numpy()
    if len(users) == 0:
        return {}
    times, items = plays["_t_us"].to_numpy(), plays["item_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return {int(users[s]): Plays(times[s:e], items[s:e]) for s, e in zip(starts, ends, strict=True)}


def _between(plays: Plays, since_us: int, before_us: int) -> slice:
    """The positions of the plays with since <= time < before (times are descending)."""
    newest_first = -plays.times
    first = int(np.searchsorted(newest_first, -before_us, side="right"))
    end = int(np.searchsorted(newest_first, -since_us, side="right"))
    return slice(first, max(first, end))


def _newest_plays(plays: Plays | None, hour_us: int, definitions: FeatureDefinitions) -> list[int]:
    """Item ids of the user's newest plays in [hour(t) - sequence look-back, hour(t))."""
    if plays is None:
        return []
    since = hour_us - definitions.sequence_lookback_hours * US_PER_HOUR
    inside = plays.items[_between(plays, since, hour_us)]
    return [int(i) for i in inside[: definitions.sequence_length]]


def _category_counts(
    plays: Plays | None,
    hour_us: int,
    buckets: tuple[np.ndarray, np.ndarray],
    definitions: FeatureDefinitions,
) -> dict[tuple[str, str], int]:
    """{(category window, bucket): the user's plays in it}, with the played items' buckets
    as one dims/items version gives them (`_buckets`)."""
    counts: dict[tuple[str, str], int] = {}
    if plays is None:
        return counts
    items, codes = buckets
    names = definitions.category_buckets
    for w in definitions.category_windows:
        inside = plays.items[_between(plays, hour_us - w.hours * US_PER_HOUR, hour_us)]
        per_bucket = np.bincount(codes[np.searchsorted(items, inside)], minlength=len(names))
        counts.update({(w.name, b): int(n) for b, n in zip(names, per_bucket, strict=True) if n})
    return counts


def _actions_by_pair(actions: pa.Table) -> dict[tuple[str, int], list[tuple[int, str, Any]]]:
    """(request_id, item_id) -> its actions as (time, type, watch_ms)."""
    out: dict[tuple[str, int], list[tuple[int, str, Any]]] = defaultdict(list)
    columns = ["request_id", "item_id", "_t_us", "event_type", "watch_ms"]
    for r in actions.select(columns).to_pylist():
        out[(r["request_id"], r["item_id"])].append((r["_t_us"], r["event_type"], r["watch_ms"]))
    return out


def _attributed(
    actions: list[tuple[int, str, Any]], impression: dict[str, Any], window_us: int
) -> dict[str, Any] | None:
    """What the actions in [t, t + attribution window] add up to (None: there are none)."""
    t = impression["_t_us"]
    inside = [(kind, watch) for at, kind, watch in actions if t <= at <= t + window_us]
    if not inside:
        return None
    play_watch = [watch for kind, watch in inside if kind == "play"]
    longest = [w for w in play_watch if w is not None]
    kinds = {kind for kind, _ in inside}
    return {
        "played": "play" in kinds,
        "watch_ms": sum(w or 0 for w in play_watch),
        "longest_play_ms": max(longest) if longest else None,
        "liked": "like" in kinds,
        "shared": "share" in kinds,
        "skipped": "skip" in kinds,
    }


# ---- the dimensions -----------------------------------------------------------------------------


def _read_dimension(
    settings: Settings, name: str, version: int, key: str, ids: list[int], columns: list[str]
) -> pa.Table:
    """The rows of `ids` in one version of a dimension table."""
    wanted = ds.field(key).isin(pa.array(ids, pa.int64()))
    return read_version(table(name).uri(settings), version, wanted, [key, *columns])


def _dimensions(
    settings: Settings, truth: list[dict[str, Any]], dims_versions: list[tuple[int, int]]
) -> tuple[dict[int, dict[int, dict[str, Any]]], dict[int, dict[int, dict[str, Any]]]]:
    """The sampled users and items in each needed version of dims/users and dims/items."""
    user_ids = sorted({t["user_id"] for t in truth})
    item_ids = sorted({t["item_id"] for t in truth})
    users = {}
    for v in sorted({u for u, _ in dims_versions}):
        found = _read_dimension(
            settings, "users", v, "user_id", user_ids, ["country", "device", "age_bucket"]
        )
        users[v] = {r["user_id"]: r for r in found.to_pylist()}
    items = {}
    for v in sorted({i for _, i in dims_versions}):
        found = _read_dimension(
            settings, "items", v, "item_id", item_ids, ["category", "duration_ms", "created_at"]
        )
        created = micros(found["created_at"]).to_pylist()
        rows = found.drop_columns(["created_at"]).to_pylist()
        for row, us in zip(rows, created, strict=True):
            row["created_s"] = None if us is None else us // 1_000_000
        items[v] = {r["item_id"]: r for r in rows}
    return users, items


def _buckets(
    settings: Settings, version: int, item_ids: np.ndarray, definitions: FeatureDefinitions
) -> tuple[np.ndarray, np.ndarray]:
    """The played items (sorted, distinct) and the index of each one's category bucket in
    `category_buckets` as one dims/items version has it (unknown or untracked: other)."""
    found = _read_dimension(settings, "items", version, "item_id", item_ids.tolist(), ["category"])
    category = dict(zip(found["item_id"].to_pylist(), found["category"].to_pylist(), strict=True))
    index = {b: i for i, b in enumerate(definitions.category_buckets)}
    other = index[OTHER_CATEGORY]
    codes = [index.get(category.get(i), other) for i in item_ids.tolist()]
    return item_ids, np.array(codes, dtype=np.int64)


# ---- assembling one expected row (pure) -------------------------------------------------------


def _labels_of(actions: dict[str, Any] | None, item: dict[str, Any] | None) -> dict[str, Any]:
    """The six labels from the attributed actions; unknown items are never finished."""
    got = actions or {}
    longest, duration = got.get("longest_play_ms"), (item or {}).get("duration_ms")
    num, den = FINISHED_SHARE
    finished = longest is not None and duration is not None and longest * den >= duration * num
    return {
        "played": bool(got.get("played")),
        "watch_ms": int(got.get("watch_ms") or 0),
        "finished": finished,
        "liked": bool(got.get("liked")),
        "shared": bool(got.get("shared")),
        "skipped": bool(got.get("skipped")),
    }


def _category_features(
    plays: dict[tuple[str, str], int],
    item: dict[str, Any] | None,
    user: Entity,
    definitions: FeatureDefinitions,
) -> dict[str, Any]:
    """Plays per category bucket and in the impression item's bucket (unknown: other)."""
    category = (item or {}).get("category")
    mine = category if category in definitions.categories else OTHER_CATEGORY
    out: dict[str, Any] = {}
    for w in definitions.category_windows:
        for c in definitions.category_buckets:
            out[window_column(user, category_tile_column(c), w)] = plays.get((w.name, c), 0)
        out[window_column(user, ITEM_CATEGORY_PLAYS, w)] = plays.get((w.name, mine), 0)
    return out


def _static(
    impression: dict[str, Any], item: dict[str, Any] | None, user: dict[str, Any] | None
) -> dict[str, Any]:
    """Dimension attributes (None for unknown ids); item age in hours at hour(t), >= 0."""
    hour_s = impression["_t_us"] // US_PER_HOUR * 3600
    item, user = item or {}, user or {}
    created = item.get("created_s")
    return {
        "item_category": item.get("category"),
        "item_duration_ms": item.get("duration_ms"),
        "item_age_hours": None if created is None else max(0.0, (hour_s - created) / 3600.0),
        "user_country": user.get("country"),
        "user_device": user.get("device"),
        "user_age_bucket": user.get("age_bucket"),
    }


def _at(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
