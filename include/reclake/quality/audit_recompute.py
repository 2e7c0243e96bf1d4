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
COUNT = "_count"  # events per (entity, hour, event type)


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
    sums = _summed(definitions)
    user_sums = _per_hour_type(scan.user_events, user.key, sums)
    hour_rows = {
        user.name: _hour_rows(user_sums, user.key, definitions),
        item.name: _hour_rows(scan.item_sums, item.key, definitions),
    }
    plays = _plays_by_user(scan.user_events)
    actions = _actions_by_pair(scan.actions)
    window_us = settings.attribution_window_minutes * 60_000_000
    users, items = _dimensions(settings, list(truth.values()), dims_versions)
    played_items = sorted({int(i) for p in plays.values() for i in p.items})
    categories = {
        v: _categories(settings, v, played_items) for v in sorted({i for _, i in dims_versions})
    }

    expected: dict[str, list[dict[str, Any]]] = {}
    for event_id, t in truth.items():
        hour_us = t["_t_us"] - t["_t_us"] % US_PER_HOUR
        features: dict[str, Any] = {}
        for e in (user, item):
            features.update(
                _window_features(hour_rows[e.name].get(t[e.key]), hour_us, e, definitions)
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
                counts = _category_counts(mine, hour_us, categories[items_v], definitions)
                row.update(_category_features(counts, it, user, definitions))
            row.update(_static(t, it, users[users_v].get(t["user_id"])))
            rows.append(row)
        expected[event_id] = rows
    return expected, len(dates)


# ---- reading bronze ---------------------------------------------------------------------------

_ENTITY_KEYS = ("user_id", "item_id")
_ON_TIME = ~ds.field("beyond_lateness")


@dataclass(frozen=True)
class Scan:
    """What the one pass over the look-back's bronze keeps."""

    user_events: pa.Table  # the sampled users' events, every column the user side reads
    item_sums: pa.Table  # the sampled items' events per (item_id, _hour_us, event_type)
    actions: pa.Table  # actions on the sampled (request_id, item_id) pairs


def _dataset(uri: str) -> ds.Dataset:
    """Bronze's current version as a pyarrow dataset (files listed by delta-rs)."""
    from reclake.snapshots.deltars import open_table
    from reclake.storagefault import guarded

    with guarded(uri):
        return open_table(uri).to_pyarrow_dataset()


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
    times = _micros(found["event_time"]).to_pylist()
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
    """One pass over the dates: the sampled users' events kept, the sampled items' events
    summed per (item, hour, type), the sampled requests' actions on their items kept."""
    from reclake.storagefault import guarded

    users = pa.array(sorted({t["user_id"] for t in truth}), pa.int64())
    items = pa.array(sorted({t["item_id"] for t in truth}), pa.int64())
    requests = pa.array(sorted({t["request_id"] for t in truth}), pa.string())
    sums = _summed(definitions)
    columns = list(
        dict.fromkeys(["event_id", "event_type", "event_time", *_ENTITY_KEYS, "request_id", *sums])
    )
    wanted = _dates_filter(dates) & (
        ds.field("user_id").isin(users) | ds.field("item_id").isin(items)
    )
    actions_types = pa.array(contract.ACTION_TYPES, pa.string())
    kept_users, item_parts, kept_actions = [], [], []
    with guarded(uri):
        for batch in bronze.to_batches(columns=columns, filter=wanted):
            rows = pa.Table.from_batches([batch])
            rows = rows.append_column("_t_us", _micros(rows["event_time"]))
            kept_users.append(rows.filter(pc.is_in(rows["user_id"], users)))
            mine = rows.filter(pc.is_in(rows["item_id"], items))
            item_parts.append(_per_hour_type(mine, "item_id", sums))
            acted = pc.and_(
                pc.is_in(mine["event_type"], actions_types), pc.is_in(mine["request_id"], requests)
            )
            kept_actions.append(mine.filter(acted))
    empty = _empty(bronze.schema, columns)
    return Scan(
        user_events=pa.concat_tables(kept_users or [empty]),
        item_sums=_combine(item_parts or [_per_hour_type(empty, "item_id", sums)], sums),
        actions=pa.concat_tables(kept_actions or [empty]),
    )


def _summed(definitions: FeatureDefinitions) -> list[str]:
    """The bronze columns some aggregation sums."""
    return sorted({a.sum_of for a in definitions.aggregations if a.sum_of})


def _empty(schema: pa.Schema, columns: list[str]) -> pa.Table:
    """No rows, the scan's columns (a look-back whose bronze holds nothing relevant)."""
    rows = schema.empty_table().select(columns)
    return rows.append_column("_t_us", pa.array([], pa.int64()))


def _micros(times: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Timestamps as int64 microseconds since the epoch (UTC)."""
    return pc.cast(pc.cast(times, pa.timestamp("us", tz="UTC")), pa.int64())


def _floor_hour(micros: pa.ChunkedArray) -> np.ndarray:
    """The hour each time falls in, in microseconds (floored, also before 1970)."""
    t = np.asarray(micros.to_numpy(), dtype=np.int64)
    return t - np.mod(t, US_PER_HOUR)


def _per_hour_type(rows: pa.Table, key: str, sums: list[str]) -> pa.Table:
    """Events per (key, hour, event type): how many, and the sum of each of `sums` (nulls
    add nothing)."""
    grouped = pa.table(
        {
            key: rows[key],
            "_hour_us": _floor_hour(rows["_t_us"]),
            "event_type": rows["event_type"],
            **{c: rows[c] for c in sums},
        }
    ).group_by([key, "_hour_us", "event_type"])
    out = grouped.aggregate([([], "count_all"), *((c, "sum") for c in sums)])
    names = {"count_all": COUNT, **{f"{c}_sum": c for c in sums}}
    return out.rename_columns([names.get(n, n) for n in out.column_names])


def _combine(parts: list[pa.Table], sums: list[str]) -> pa.Table:
    """Per-batch (key, hour, type) sums added up into one row per (key, hour, type)."""
    rows = pa.concat_tables(parts)
    keys = [c for c in rows.column_names if c not in {COUNT, *sums}]
    out = rows.group_by(keys).aggregate([(COUNT, "sum"), *((c, "sum") for c in sums)])
    return out.rename_columns([n.removesuffix("_sum") for n in out.column_names])


# ---- per sampled row ----------------------------------------------------------------------------


def _hour_rows(
    per_type: pa.Table, key: str, definitions: FeatureDefinitions
) -> dict[int, HourRows]:
    """Per entity id, its hours and every aggregation's value in each (from the per (key,
    hour, type) rows)."""
    if per_type.num_rows == 0:
        return {}
    keys = per_type[key].to_numpy()
    hours = per_type["_hour_us"].to_numpy()
    order = np.lexsort((hours, keys))
    keys, hours = keys[order], hours[order]
    types = np.asarray(per_type["event_type"].to_pylist(), dtype=object)[order]
    first = np.r_[True, (keys[1:] != keys[:-1]) | (hours[1:] != hours[:-1])]
    pair = np.cumsum(first) - 1
    sums = np.zeros((int(pair[-1]) + 1, len(definitions.aggregations)), np.int64)
    for j, a in enumerate(definitions.aggregations):
        values = pc.fill_null(per_type[COUNT if a.sum_of is None else a.sum_of], 0)
        values = np.asarray(values.to_numpy(), dtype=np.int64)[order]
        of_type = types == a.event_type
        np.add.at(sums[:, j], pair[of_type], values[of_type])
    pair_keys, pair_hours = keys[first], hours[first]
    starts = np.flatnonzero(np.r_[True, pair_keys[1:] != pair_keys[:-1]])
    ends = np.r_[starts[1:], len(pair_keys)]
    return {
        int(pair_keys[s]): HourRows(pair_hours[s:e], sums[s:e])
        for s, e in zip(starts, ends, strict=True)
    }


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


def _plays_by_user(user_events: pa.Table) -> dict[int, Plays]:
    """The sampled users' plays, per user, newest first."""
    plays = user_events.filter(pc.equal(user_events["event_type"], "play"))
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
    categories: dict[int, str | None],
    definitions: FeatureDefinitions,
) -> dict[tuple[str, str], int]:
    """{(category window, bucket): the user's plays in it}, with the played items'
    categories as one dims/items version has them (unknown or untracked: other)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    if plays is None:
        return counts
    for w in definitions.category_windows:
        inside = plays.items[_between(plays, hour_us - w.hours * US_PER_HOUR, hour_us)]
        for item_id in inside.tolist():
            category = categories.get(item_id)
            bucket = category if category in definitions.categories else OTHER_CATEGORY
            counts[(w.name, bucket)] += 1
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
    from reclake.snapshots.deltars import open_table
    from reclake.storagefault import guarded

    uri = table(name).uri(settings)
    with guarded(uri):
        return (
            open_table(uri, version)
            .to_pyarrow_dataset()
            .to_table(columns=[key, *columns], filter=ds.field(key).isin(pa.array(ids, pa.int64())))
        )


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
        created = _micros(found["created_at"]).to_pylist()
        rows = found.drop_columns(["created_at"]).to_pylist()
        for row, us in zip(rows, created, strict=True):
            row["created_s"] = None if us is None else us // 1_000_000
        items[v] = {r["item_id"]: r for r in rows}
    return users, items


def _categories(settings: Settings, version: int, item_ids: list[int]) -> dict[int, str | None]:
    """item id -> category in one dims/items version, for the items the sampled users played."""
    if not item_ids:
        return {}
    found = _read_dimension(settings, "items", version, "item_id", item_ids, ["category"])
    return dict(zip(found["item_id"].to_pylist(), found["category"].to_pylist(), strict=True))


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
