"""Expected training-sample rows recomputed straight from bronze/events and the dimensions,
for the audit's few sampled impressions.

Deliberately plain and independent of the production path: no tiles, no window state, no
code from features/tiles.py, state.py, samples.py or labels.py; only the feature definitions
(what the features are) and the config (attribution window). The sampled users' and items'
raw events are summed per (entity, hour), each sampled impression is joined to the hour rows
of its look-back and to the actions of its attribution window, and every value is summed or
picked from those. Sampled keys are broadcast; bronze is read only in the event_date
partitions the sample needs and only in the columns it needs, so the cost follows the
sample, not the table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from reclake import contract
from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    ITEM_CATEGORY_PLAYS,
    OTHER_CATEGORY,
    SEQUENCE_COLUMN,
    SEQUENCE_LEN_COLUMN,
    Aggregation,
    Entity,
    FeatureDefinitions,
    category_tile_column,
    window_column,
)
from reclake.io import read_table
from reclake.tables import table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Timestamps are compared as text (UTC, microseconds): exact, and readable in the report.
TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
US_PER_HOUR = 3_600_000_000
BRONZE_COLUMNS = (
    "event_id",
    "event_type",
    "event_time",
    "user_id",
    "item_id",
    "request_id",
    "position",
    "watch_ms",
    "beyond_lateness",
    "event_date",
)
# finished: the longest attributed play reaches 90 % of the item (docs/labels.md).
FINISHED_SHARE = (9, 10)


@dataclass(frozen=True)
class Probe:
    """One sampled row as the recompute needs it: its key and (for choosing partitions) its
    hour and time as the samples table holds them."""

    event_id: str
    hour_us: int
    time_us: int


def as_text(column: str) -> Column:
    """A timestamp column as comparable text (the session time zone is UTC)."""
    from pyspark.sql import functions as F

    return F.date_format(F.col(column), TIME_FORMAT)


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
    spark: SparkSession,
    settings: Settings,
    probes: list[Probe],
    dims_versions: list[tuple[int, int]],
    definitions: FeatureDefinitions = DEFINITIONS,
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Expected rows per event id, one per (users, items) version pair of `dims_versions`,
    and the number of bronze date partitions read. An event id without an on-time impression
    in bronze gets no entry."""
    from pyspark.sql import functions as F

    dates = bronze_dates(
        probes, definitions.max_lookback_hours, settings.attribution_window_minutes
    )
    sums = {a.sum_of for a in definitions.aggregations if a.sum_of}
    bronze = (
        read_table(spark, table("events"), settings)
        .where(F.col("event_date").isin(dates) & ~F.col("beyond_lateness"))
        .select(*dict.fromkeys([*BRONZE_COLUMNS, *sorted(sums)]))
        .withColumn("_t_us", F.unix_micros("event_time"))
    )
    keys = spark.createDataFrame([(p.event_id,) for p in probes], "event_id STRING")
    # An impression lives in its own event_date: 1-2 of the look-back's dates, not all 8.
    # A sampled row whose time was moved to another day is then not found: still a mismatch.
    own = sorted({_at(t).date() for p in probes for t in (p.time_us, p.hour_us)})
    truth = _impressions(bronze.where(F.col("event_date").isin(own)), F.broadcast(keys))
    if not truth:
        return {}, len(dates)
    probe = spark.createDataFrame(
        [
            (t["event_id"], t["user_id"], t["item_id"], t["request_id"], t["_t_us"])
            for t in truth.values()
        ],
        "_sample STRING, _user_id BIGINT, _item_id BIGINT, _request STRING, _time_us BIGINT",
    )
    probe = F.broadcast(
        probe.withColumn("_hour_us", F.col("_time_us") - F.pmod("_time_us", F.lit(US_PER_HOUR)))
    )
    # One scan of bronze serves every query below: the events of the sampled users and items
    # (labels are actions on sampled items), held while the recompute runs.
    named = None
    for e in definitions.entities:
        mine = F.col(e.key).isin(sorted({t[e.key] for t in truth.values()}))
        named = mine if named is None else named | mine
    relevant = bronze.where(named).persist()
    try:
        windows = {
            e.name: _window_sums(relevant, probe, e, definitions) for e in definitions.entities
        }
        labels = _labels(relevant, probe, settings.attribution_window_minutes * 60_000_000)
        items_versions = sorted({v for _, v in dims_versions})
        categories = _category_plays(spark, settings, relevant, probe, items_versions, definitions)
    finally:
        relevant.unpersist()
    user = next(e for e in definitions.entities if e.category_plays)
    users, items = _dimensions(spark, settings, list(truth.values()), dims_versions)

    expected: dict[str, list[dict[str, Any]]] = {}
    for event_id, t in truth.items():
        rows = []
        for users_v, items_v in dims_versions:
            item = items[items_v].get(t["item_id"])
            row = {k: t[k] for k in KEY_COLUMNS}
            row.update(_labels_of(labels.get(event_id), item))
            for e in definitions.entities:
                row.update(_window_features(windows[e.name].get(event_id), e, definitions))
            plays = categories.get((event_id, items_v), {})
            row.update(_category_features(plays, item, user, definitions))
            row.update(_static(t, item, users[users_v].get(t["user_id"])))
            rows.append(row)
        expected[event_id] = rows
    return expected, len(dates)


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


def _impressions(bronze: DataFrame, keys: DataFrame) -> dict[str, dict[str, Any]]:
    """The sampled impressions as bronze holds them (on time only): the true keys."""
    from pyspark.sql import functions as F

    found = (
        bronze.where(F.col("event_type") == "impression")
        .join(keys, "event_id")
        .withColumn("_hour", F.date_trunc("hour", "event_time"))
        .select(
            "event_id",
            "request_id",
            "user_id",
            "item_id",
            "position",
            "_t_us",
            as_text("event_time").alias("event_time"),
            as_text("_hour").alias("event_hour"),
            F.to_date("_hour").cast("string").alias("sample_date"),
        )
    )
    return {r["event_id"]: r.asDict() for r in found.collect()}


def _window_sums(
    bronze: DataFrame, probe: DataFrame, entity: Entity, definitions: FeatureDefinitions
) -> dict[str, dict[str, Any]]:
    """Per sampled impression, the entity's raw events of [hour(t) - W, hour(t)) summed for
    every window and aggregation, and (for the sequence) its newest plays."""
    from pyspark.sql import functions as F

    mine = _sampled_entities_events(bronze, probe, entity.key)
    # Per (entity, hour) first: each sampled row then meets at most look-back hours rows, not
    # every raw event of its entity's week. Windows are whole hours before hour(t), so a sum
    # over the hour rows equals the sum over the raw events.
    hour = F.col("_t_us") - F.pmod("_t_us", F.lit(US_PER_HOUR))
    per_hour = mine.groupBy(entity.key, hour.alias("_e_hour_us")).agg(
        *(
            F.sum(F.when(F.col("event_type") == a.event_type, _summand(a)).otherwise(0)).alias(
                f"_a_{a.name}"
            )
            for a in definitions.aggregations
        )
    )
    e, h = F.col("_e_hour_us"), F.col("_hour_us")
    lookback = definitions.max_lookback_hours * US_PER_HOUR
    joined = per_hour.join(
        probe, (F.col(entity.key) == F.col(f"_{entity.key}")) & (e >= h - lookback) & (e < h)
    )
    aggs = [
        F.sum(F.when(e >= h - w.hours * US_PER_HOUR, F.col(f"_a_{a.name}")).otherwise(0))
        .cast("bigint")
        .alias(window_column(entity, a.name, w))
        for w in definitions.windows
        for a in definitions.aggregations
    ]
    rows = joined.groupBy("_sample").agg(*aggs).collect()
    sums = {r["_sample"]: r.asDict() for r in rows}
    if entity.play_sequence:
        for sample, plays in _newest_plays(mine, probe, entity, definitions).items():
            sums.setdefault(sample, {})[SEQUENCE_COLUMN] = plays
    return sums


def _sampled_entities_events(bronze: DataFrame, probe: DataFrame, key: str) -> DataFrame:
    """Bronze events of the entities (users or items) the sampled impressions name."""
    from pyspark.sql import functions as F

    keys = probe.select(F.col(f"_{key}").alias(key)).distinct()
    return bronze.join(F.broadcast(keys), key, "left_semi")


def _summand(a: Aggregation) -> Column:
    """What one matching event adds to an aggregation: 1, or its (null as 0) summed column."""
    from pyspark.sql import functions as F

    return F.lit(1) if a.sum_of is None else F.coalesce(F.col(a.sum_of), F.lit(0))


def _newest_plays(
    events: DataFrame, probe: DataFrame, entity: Entity, definitions: FeatureDefinitions
) -> dict[str, list[int]]:
    """Per sampled impression, the item ids of its entity's newest plays in
    [hour(t) - sequence look-back, hour(t)), newest first."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    t, h = F.col("_t_us"), F.col("_hour_us")
    since = h - definitions.sequence_lookback_hours * US_PER_HOUR
    plays = events.where(F.col("event_type") == "play").join(
        probe, (F.col(entity.key) == F.col(f"_{entity.key}")) & (t >= since) & (t < h)
    )
    # Newest first; equal times by event_id, larger first: the reverse of (time, id).
    order = Window.partitionBy("_sample").orderBy(t.desc(), F.col("event_id").desc())
    rows = (
        plays.withColumn("_rank", F.row_number().over(order))
        .where(F.col("_rank") <= definitions.sequence_length)
        .select("_sample", "_rank", "item_id")
        .collect()
    )
    ranked: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in rows:
        ranked[r["_sample"]].append((r["_rank"], r["item_id"]))
    return {s: [item for _, item in sorted(got)] for s, got in ranked.items()}


def _labels(bronze: DataFrame, probe: DataFrame, window_us: int) -> dict[str, dict[str, Any]]:
    """Per sampled impression, what the actions of its (request_id, item_id) in
    [t, t + attribution window] add up to."""
    from pyspark.sql import functions as F

    t = F.col("_t_us")
    joined = bronze.where(F.col("event_type").isin(*contract.ACTION_TYPES)).join(
        probe,
        (F.col("request_id") == F.col("_request"))
        & (F.col("item_id") == F.col("_item_id"))
        & (t >= F.col("_time_us"))
        & (t <= F.col("_time_us") + window_us),
    )
    kind = F.col("event_type")
    is_play = kind == "play"
    rows = (
        joined.groupBy("_sample")
        .agg(
            F.max(is_play).alias("played"),
            F.sum(F.when(is_play, F.coalesce("watch_ms", F.lit(0))).otherwise(0)).alias("watch_ms"),
            F.max(F.when(is_play, F.col("watch_ms"))).alias("longest_play_ms"),
            F.max(kind == "like").alias("liked"),
            F.max(kind == "share").alias("shared"),
            F.max(kind == "skip").alias("skipped"),
        )
        .collect()
    )
    return {r["_sample"]: r.asDict() for r in rows}


def _category_plays(
    spark: SparkSession,
    settings: Settings,
    bronze: DataFrame,
    probe: DataFrame,
    items_versions: list[int],
    definitions: FeatureDefinitions,
) -> dict[tuple[str, int], dict[tuple[str, str], int]]:
    """(event id, items version) -> {(category window, bucket): the user's plays}, with the
    played items' categories as that version of dims/items has them."""
    from pyspark.sql import functions as F

    longest = max(w.hours for w in definitions.category_windows) * US_PER_HOUR
    user = next(e for e in definitions.entities if e.category_plays)
    plays = _sampled_entities_events(bronze, probe, user.key).where(F.col("event_type") == "play")
    # Plays per (user, hour, item) first, as in _window_sums: the probes meet hour rows.
    hour = F.col("_t_us") - F.pmod("_t_us", F.lit(US_PER_HOUR))
    per_item = plays.groupBy(user.key, hour.alias("_e_hour_us"), "item_id").agg(
        F.count(F.lit(1)).alias("_plays")
    )
    items = None
    for v in items_versions:
        one = read_table(spark, table("items"), settings, v).select(
            "item_id", "category", F.lit(v).alias("_items_v")
        )
        items = one if items is None else items.unionByName(one)
    versions = spark.createDataFrame([(v,) for v in items_versions], "_items_v BIGINT")
    tagged = per_item.crossJoin(F.broadcast(versions)).join(items, ["_items_v", "item_id"], "left")
    tracked = F.col("category").isin(list(definitions.categories))
    bucket = F.when(tracked, F.col("category")).otherwise(F.lit(OTHER_CATEGORY))
    per_bucket = tagged.groupBy(user.key, "_e_hour_us", "_items_v", bucket.alias("_bucket")).agg(
        F.sum("_plays").alias("_plays")
    )
    e, h = F.col("_e_hour_us"), F.col("_hour_us")
    joined = per_bucket.join(
        probe, (F.col(user.key) == F.col(f"_{user.key}")) & (e >= h - longest) & (e < h)
    )
    windows = definitions.category_windows
    counts = [
        F.sum(F.when(e >= h - w.hours * US_PER_HOUR, F.col("_plays")).otherwise(0)).alias(f"_w{i}")
        for i, w in enumerate(windows)
    ]
    rows = joined.groupBy("_sample", "_items_v", "_bucket").agg(*counts).collect()
    out: dict[tuple[str, int], dict[tuple[str, str], int]] = defaultdict(dict)
    for r in rows:
        for i, w in enumerate(windows):
            out[(r["_sample"], r["_items_v"])][(w.name, r["_bucket"])] = int(r[f"_w{i}"])
    return out


def _dimensions(
    spark: SparkSession,
    settings: Settings,
    truth: list[dict[str, Any]],
    dims_versions: list[tuple[int, int]],
) -> tuple[dict[int, dict[int, dict[str, Any]]], dict[int, dict[int, dict[str, Any]]]]:
    """The sampled users and items in each needed version of dims/users and dims/items."""
    from pyspark.sql import functions as F

    user_ids = sorted({t["user_id"] for t in truth})
    item_ids = sorted({t["item_id"] for t in truth})
    users = {}
    for v in sorted({u for u, _ in dims_versions}):
        df = read_table(spark, table("users"), settings, v).where(F.col("user_id").isin(user_ids))
        df = df.select("user_id", "country", "device", "age_bucket")
        users[v] = {r["user_id"]: r.asDict() for r in df.collect()}
    items = {}
    for v in sorted({i for _, i in dims_versions}):
        df = read_table(spark, table("items"), settings, v).where(F.col("item_id").isin(item_ids))
        df = df.select(
            "item_id", "category", "duration_ms", F.unix_seconds("created_at").alias("created_s")
        )
        items[v] = {r["item_id"]: r.asDict() for r in df.collect()}
    return users, items


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


def _window_features(
    sums: dict[str, Any] | None, entity: Entity, definitions: FeatureDefinitions
) -> dict[str, Any]:
    """Counts and sums (0 without events), ratios (None on a zero denominator), sequence."""
    sums = sums or {}
    out: dict[str, Any] = {}
    for w in definitions.windows:
        for a in definitions.aggregations:
            name = window_column(entity, a.name, w)
            out[name] = int(sums.get(name) or 0)
        for r in definitions.ratios:
            num = out[window_column(entity, r.numerator, w)]
            den = out[window_column(entity, r.denominator, w)]
            out[window_column(entity, r.name, w)] = num / den if den else None
    if entity.play_sequence:
        sequence = list(sums.get(SEQUENCE_COLUMN) or [])
        out[SEQUENCE_COLUMN] = sequence
        out[SEQUENCE_LEN_COLUMN] = len(sequence)
    return out


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
