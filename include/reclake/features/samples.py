"""Point-in-time correct training samples: every labeled impression of an hour H with its
labels, the user's and item's window features over complete hours before H, the user's play
sequence, and static attributes.

Cost is flat in history: the window features of hour H are the rolling window state(H)
(reclake.features.state), stepped from state(H - 1h) with a few tile hours, and impressions
meet it in an equi-join on (entity key, hour). No tile older than the look-back is read.
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
from reclake.features.state import build_window_states, read_states
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
    from pyspark.sql import DataFrame, SparkSession


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


def features_from_state(
    states: DataFrame,
    entity: Entity,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """Window features of each (entity key, event_hour) from the stored states of those hours:
    the sums as they are, the ratios, and the sequence's item ids (one row per state row)."""
    from pyspark.sql import functions as F

    feats = states.withColumnRenamed("hour", "event_hour").drop("date")
    for w in definitions.windows:
        for r in definitions.ratios:
            num = F.col(window_column(entity, r.numerator, w)).cast("double")
            den = F.col(window_column(entity, r.denominator, w))
            feats = feats.withColumn(window_column(entity, r.name, w), F.when(den > 0, num / den))
    if entity.play_sequence:
        # The state keeps the plays newest first already (see state._finish).
        feats = feats.withColumn(SEQUENCE_COLUMN, F.transform(RECENT_PLAYS, lambda x: x["item_id"]))
        feats = feats.withColumn(SEQUENCE_LEN_COLUMN, F.size(SEQUENCE_COLUMN).cast("int"))
        feats = feats.drop(RECENT_PLAYS)
    return feats


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
    # Entities without activity in the look-back have no state row: counts 0, ratios null.
    zeros = {
        c.name: F.coalesce(F.col(c.name), F.lit(0))
        for c in definitions.sample_feature_columns()
        if c.kind != "ratio" and c.name in s.columns
    }
    zeros[SEQUENCE_COLUMN] = F.coalesce(F.col(SEQUENCE_COLUMN), F.array().cast("array<bigint>"))
    zeros[SEQUENCE_LEN_COLUMN] = F.coalesce(F.col(SEQUENCE_LEN_COLUMN), F.lit(0))
    s = s.withColumns(zeros)
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
        # The labeled table holds a few files per hour: hash the hour's rows over the shuffle
        # partitions so the joins and the write (one stage) keep every core busy to the end.
        .repartition(settings.spark_shuffle_partitions, "user_id")
    )
    build_window_states(spark, settings, start, end, definitions)
    features = {
        entity.name: features_from_state(
            read_states(spark, settings, entity, hours), entity, definitions
        )
        for entity in definitions.entities
    }
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
