"""Point-in-time correct training samples: every labeled impression of an hour H with its
labels, the user's and item's window features over complete hours before H, the user's play
sequence, and static attributes.

Cost is flat in history: only tiles of [min H - lookback, max H) are read, and each
(entity, H) point meets its own entity's tiles of the look-back range in a bounded range
join; it never touches older tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    ITEM_CATEGORY_PLAYS,
    RECENT_PLAYS,
    SAMPLE_KEYS,
    SAMPLE_LABELS,
    SEQUENCE_COLUMN,
    SEQUENCE_LEN_COLUMN,
    Entity,
    FeatureDefinitions,
    category_tile_column,
    window_column,
)
from reclake.features.tiles import (
    built_arrival_hours,
    category_bucket,
    collect_hours,
    dates_of,
    sql_timestamp,
)
from reclake.ingest.log import ingested_hours
from reclake.io import ensure_table, read_table, replace_where
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


class InputsNotFinalError(RuntimeError):
    """Samples were asked for hours whose labels or tiles are not final yet."""


@dataclass(frozen=True)
class SamplesResult:
    """What one build_training_samples run wrote."""

    start: str
    end: str
    rows: int
    version: int


# ---- finality -------------------------------------------------------------------------------


def required_tile_builds(
    settings: Settings,
    start: datetime,
    end: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> tuple[datetime, datetime]:
    """Arrival hours [lo, hi) whose tile builds samples of [start, end) depend on.

    The tile of hour h is final once arrival hours h .. h + allowed lateness are built; a
    sample of hour H reads tiles of [H - lookback, H).
    """
    lo = parse_utc(start) - timedelta(hours=definitions.max_lookback_hours)
    # The last tile needed is of hour end - 2h; it is final after arrival hour end - 2h + L.
    hi = parse_utc(end) - HOUR + timedelta(hours=settings.allowed_lateness_hours)
    return lo, hi


def unready_inputs(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> dict[str, list[datetime]]:
    """The inputs that are not final for [start, end): hours without labels in silver and
    arrival hours not yet folded into the tiles. Empty lists mean samples may be built."""
    from pyspark.sql import functions as F

    from reclake.io import is_delta_table

    hours = list(hours_between(start, end))
    labeled: set[datetime] = set()
    silver = table("impressions_labeled")
    if hours and is_delta_table(spark, silver.uri(settings)):
        silver_hours = (
            read_table(spark, silver, settings)
            .filter(F.col("event_date").isin(dates_of(hours)))
            .filter(F.col("event_hour").isin(hours))
        )
        labeled = collect_hours(silver_hours, "event_hour")
    lo, hi = required_tile_builds(settings, parse_utc(start), parse_utc(end), definitions)
    # The lake begins at its first ingested arrival hour: earlier hours have no events, so
    # there are no tiles to wait for before it.
    lo = max([lo, *ingested_hours(settings)[:1]])
    built = built_arrival_hours(settings, lo, hi)
    return {
        "labels": [h for h in hours if h not in labeled],
        "tile_builds": [h for h in hours_between(lo, hi) if h not in built],
    }


def assert_inputs_final(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> None:
    """The one finality check: raise InputsNotFinalError unless every input of [start, end) is
    final (each hour has labels in silver; tiles were built for every arrival hour needed)."""
    missing = unready_inputs(spark, settings, start, end, definitions)
    if not any(missing.values()):
        return

    def show(hours: list[datetime]) -> str:
        shown = ", ".join(iso(h) for h in hours[:3])
        return f"{len(hours)} hour(s): {shown}{' ...' if len(hours) > 3 else ''}"

    problems = []
    if missing["labels"]:
        problems.append(f"no labeled impressions in silver for {show(missing['labels'])}")
    if missing["tile_builds"]:
        problems.append(
            f"build_tiles has not processed arrival {show(missing['tile_builds'])} "
            f"(tiles of hour h are final after arrival hours h..h+"
            f"{settings.allowed_lateness_hours} are built)"
        )
    raise InputsNotFinalError(
        f"training samples for [{iso(start)}, {iso(end)}) asked too early: " + "; ".join(problems)
    )


# ---- pure transforms ------------------------------------------------------------------------


def _hour_index(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f"unix_seconds({column}) DIV 3600")


def window_features(
    points: DataFrame,
    tiles: DataFrame,
    entity: Entity,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """Window features for each (entity key, event_hour) point from the tiles of the complete
    hours before it, via a range join bounded by the look-back (one row per point)."""
    from pyspark.sql import functions as F

    key = entity.key
    p = points.select(
        F.col(key).alias("_key"), F.col("event_hour"), _hour_index("event_hour").alias("_ph")
    )
    t = tiles.withColumn("_th", _hour_index("hour"))
    lookback = definitions.max_lookback_hours
    in_range = (p["_key"] == t[key]) & (t["_th"] >= p["_ph"] - lookback) & (t["_th"] < p["_ph"])
    joined = p.join(t, in_range, "left")

    def windowed_sum(column: str, hours: int, name: str) -> Column:
        inside = F.col("_th") >= F.col("_ph") - hours
        # An entity without tiles in the window has count 0, not null.
        return F.coalesce(F.sum(F.when(inside, F.col(column))), F.lit(0)).cast("bigint").alias(name)

    aggs = [
        windowed_sum(a.name, w.hours, window_column(entity, a.name, w))
        for w in definitions.windows
        for a in definitions.aggregations
    ]
    if entity.category_plays:
        aggs += [
            windowed_sum(
                category_tile_column(c), w.hours, window_column(entity, category_tile_column(c), w)
            )
            for w in definitions.category_windows
            for c in definitions.category_buckets
        ]
    if entity.play_sequence:
        inside = F.col("_th") >= F.col("_ph") - definitions.sequence_lookback_hours
        aggs.append(F.flatten(F.collect_list(F.when(inside, F.col(RECENT_PLAYS)))).alias("_plays"))
    feats = joined.groupBy("_key", "event_hour", "_ph").agg(*aggs)
    for w in definitions.windows:
        for r in definitions.ratios:
            num = F.col(window_column(entity, r.numerator, w)).cast("double")
            den = F.col(window_column(entity, r.denominator, w))
            feats = feats.withColumn(window_column(entity, r.name, w), F.when(den > 0, num / den))
    if entity.play_sequence:
        # (event_time, event_id) descending: newest first, ties by the larger event_id first.
        newest = F.slice(F.sort_array("_plays", asc=False), 1, definitions.sequence_length)
        feats = feats.withColumn(SEQUENCE_COLUMN, F.transform(newest, lambda x: x["item_id"]))
        feats = feats.withColumn(SEQUENCE_LEN_COLUMN, F.size(SEQUENCE_COLUMN).cast("int"))
        feats = feats.drop("_plays")
    return feats.drop("_ph").withColumnRenamed("_key", key)


def samples_from_inputs(
    impressions: DataFrame,
    user_features: DataFrame,
    item_features: DataFrame,
    users: DataFrame,
    items: DataFrame,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """One sample per labeled impression: keys, labels, window features, static attributes."""
    from pyspark.sql import functions as F

    user = next(e for e in definitions.entities if e.category_plays)
    items_static = items.select(
        "item_id",
        F.col("category").alias("item_category"),
        F.col("duration_ms").cast("bigint").alias("item_duration_ms"),
        F.col("created_at").cast("timestamp").alias("_created_at"),
    )
    users_static = users.select(
        "user_id",
        F.col("country").alias("user_country"),
        F.col("device").alias("user_device"),
        F.col("age_bucket").alias("user_age_bucket"),
    )
    s = (
        impressions.join(user_features, ["user_id", "event_hour"], "left")
        .join(item_features, ["item_id", "event_hour"], "left")
        .join(items_static, "item_id", "left")
        .join(users_static, "user_id", "left")
    )
    # Age at hour(t); an item published during the sample's hour is 0 hours old.
    age_s = F.expr("unix_seconds(event_hour) - unix_seconds(_created_at)")
    age = F.when(age_s.isNotNull(), F.greatest(F.lit(0.0), age_s / F.lit(3600.0)))
    s = s.withColumn("item_age_hours", age)  # greatest() alone would turn null into 0
    bucket = category_bucket(F.col("item_category"), definitions)
    for w in definitions.category_windows:
        pick = None
        for c in definitions.category_buckets:
            column = F.col(window_column(user, category_tile_column(c), w))
            pick = (F.when(bucket == c, column)) if pick is None else pick.when(bucket == c, column)
        s = s.withColumn(window_column(user, ITEM_CATEGORY_PLAYS, w), pick)
    s = s.withColumn("sample_date", F.to_date("event_hour"))
    return s.select(
        *(
            F.col(n).cast(t.replace(" NOT NULL", "")).alias(n)
            for n, t in definitions.sample_columns()
        )
    )


# ---- I/O ------------------------------------------------------------------------------------


def read_tiles(
    spark: SparkSession,
    settings: Settings,
    entity: Entity,
    start: datetime,
    end: datetime,
) -> DataFrame:
    """An entity's tiles of hours [start, end), reading only those date partitions."""
    from pyspark.sql import functions as F

    tiles = read_table(spark, table(entity.tile_table), settings)
    return tiles.filter(F.col("date").between(start.date(), (end - HOUR).date())).filter(
        (F.col("hour") >= start) & (F.col("hour") < end)
    )


def build_training_samples(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> SamplesResult:
    """Build gold/training_samples for the labeled impressions of hours [start, end)."""
    from pyspark.sql import functions as F

    start, end = parse_utc(start), parse_utc(end)
    hours = list(hours_between(start, end))
    if not hours:
        raise ValueError(f"empty interval [{iso(start)}, {iso(end)})")
    assert_inputs_final(spark, settings, start, end, definitions)

    keep = [n for n, _ in (*SAMPLE_KEYS, *SAMPLE_LABELS)]
    impressions = (
        read_table(spark, table("impressions_labeled"), settings)
        .filter(F.col("event_date").isin(dates_of(hours)))
        .filter((F.col("event_hour") >= start) & (F.col("event_hour") < end))
        .select(*keep)
    )
    lookback_start = start - timedelta(hours=definitions.max_lookback_hours)
    features = {}
    for entity in definitions.entities:
        points = impressions.select(entity.key, "event_hour").distinct()
        tiles = read_tiles(spark, settings, entity, lookback_start, end)
        features[entity.name] = window_features(points, tiles, entity, definitions)
    user = next(e.name for e in definitions.entities if e.key == "user_id")
    item = next(e.name for e in definitions.entities if e.key == "item_id")
    samples = samples_from_inputs(
        impressions,
        features[user],
        features[item],
        read_table(spark, table("users"), settings),
        read_table(spark, table("items"), settings),
        definitions,
    )
    spec = table("training_samples")
    ensure_table(spark, spec, definitions.samples_ddl(), settings)
    dates = ", ".join(f"DATE '{d}'" for d in dates_of(hours))
    in_hours = f"event_hour >= {sql_timestamp(start)} AND event_hour < {sql_timestamp(end)}"
    predicate = f"sample_date IN ({dates}) AND {in_hours}"
    result = replace_where(samples, spec, settings, predicate)
    return SamplesResult(iso(start), iso(end), result.rows, result.version)
