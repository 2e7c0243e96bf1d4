"""Point-in-time correct training samples: every labeled impression of an hour H with its
labels, the user's and item's window features over complete hours before H, the user's play
sequence, and static attributes.

Cost follows rows, not hours: the window values of every (entity, hour) the impressions of
[start, end) ask for come from one set-based computation (reclake.features.state) over the
tiles and the checkpoint the previous run stored, and impressions meet them in an equi-join
on (entity key, hour). A run commits the samples once per chunk of hours, whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reclake import sqltext
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
from reclake.features.labels import labeled_hours
from reclake.features.state import interval_windows
from reclake.features.tiles import (
    built_arrival_hours,
    category_bucket,
    collect_hours,
    dates_of,
)
from reclake.hourlog import hours_with_docs, write_hour_doc
from reclake.ingest.log import ingested_hours
from reclake.io import ensure_table, read_table, replace_where
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# One record per sample hour built: what waits for samples (the snapshot DAG, backfills)
# reads these, so an hour without impressions is as done as a busy one.
SAMPLE_LOG_DIR = "_reclake/sample_log"


class InputsNotFinalError(RuntimeError):
    """Samples were asked for hours whose labels or tiles are not final yet."""


@dataclass(frozen=True)
class SamplesResult:
    """What one build_training_samples run wrote."""

    start: str
    end: str
    rows: int
    version: int
    chunks: int = 1
    bootstrapped: int = 0  # chunks whose window base was read from the tiles, not a checkpoint


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
    """The inputs that are not final for [start, end): hours label_impressions has not
    processed and arrival hours not yet folded into the tiles. Empty lists mean samples may be
    built. An hour the labels job processed counts whatever it held (quiet hours too)."""
    from pyspark.sql import functions as F

    from reclake.io import is_delta_table

    hours = list(hours_between(start, end))
    labeled = labeled_hours(settings, parse_utc(start), parse_utc(end))
    unlogged = [h for h in hours if h not in labeled]
    silver = table("impressions_labeled")
    # Lakes labeled before the label log existed: an hour with rows in silver was labeled.
    if unlogged and is_delta_table(spark, silver.uri(settings)):
        silver_hours = (
            read_table(spark, silver, settings)
            .filter(F.col("event_date").isin(dates_of(unlogged)))
            .filter(F.col("event_hour").isin(unlogged))
        )
        labeled |= collect_hours(silver_hours, "event_hour")
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
        problems.append(f"label_impressions has not processed {show(missing['labels'])}")
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
    chunk_hours: int | None = None,
) -> SamplesResult:
    """Build gold/training_samples for the labeled impressions of hours [start, end): one
    window computation and one commit per chunk of `chunk_hours` (default: the setting)."""
    start, end = parse_utc(start), parse_utc(end)
    hours = list(hours_between(start, end))
    if not hours:
        raise ValueError(f"empty interval [{iso(start)}, {iso(end)})")
    chunk_hours = chunk_hours or settings.samples_chunk_hours
    if chunk_hours < 1:
        raise ValueError(f"chunk_hours must be >= 1, got {chunk_hours}")
    assert_inputs_final(spark, settings, start, end, definitions)
    rows, version, bootstrapped = 0, -1, 0
    chunks = [hours[i : i + chunk_hours] for i in range(0, len(hours), chunk_hours)]
    for chunk in chunks:
        # Each chunk starts from the checkpoint the one before stored.
        written, version, reason = _build_chunk(
            spark, settings, chunk[0], chunk[-1] + HOUR, definitions
        )
        rows += written
        bootstrapped += reason is not None
    return SamplesResult(iso(start), iso(end), rows, version, len(chunks), bootstrapped)


def _build_chunk(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    definitions: FeatureDefinitions,
) -> tuple[int, int, str | None]:
    """Samples of [start, end) in one commit: (rows, version, why the base was bootstrapped)."""
    from pyspark.sql import functions as F

    in_hours = [(start, end)]
    keep = [n for n, _ in (*SAMPLE_KEYS, *SAMPLE_LABELS)]
    impressions = (
        read_table(spark, table("impressions_labeled"), settings)
        .filter(F.expr(sqltext.hour_ranges(in_hours, "event_hour", "event_date")))
        .select(*keep)
        # The labeled table holds a few files per hour: hash the rows over the shuffle
        # partitions so the joins and the write (one stage) keep every core busy to the end.
        .repartition(settings.spark_shuffle_partitions, "user_id")
    )
    probes = {
        e.name: impressions.select(e.key, F.col("event_hour").alias("hour"))
        for e in definitions.entities
    }
    per_hour = dict(
        impressions.groupBy(F.expr("unix_seconds(event_hour)")).count().collect()
    )  # one sample per labeled impression
    values, state = interval_windows(spark, settings, start, end, probes, definitions)
    try:
        features = {
            name: features_from_state(v, definitions.entity(name), definitions)
            for name, v in values.items()
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
        predicate = sqltext.hour_ranges(in_hours, "event_hour", "sample_date")
        result = replace_where(samples, spec, settings, predicate)
    finally:
        for v in values.values():
            v.unpersist()
    if sum(per_hour.values()) != result.rows:
        raise RuntimeError(
            f"samples of [{iso(start)}, {iso(end)}) wrote {result.rows} rows for "
            f"{sum(per_hour.values())} labeled impressions"
        )
    for hour in hours_between(start, end):
        doc = {
            "sample_hour": iso(hour),
            "rows": per_hour.get(int(hour.timestamp()), 0),
            "version": result.version,
            "run": [iso(start), iso(end)],
        }
        write_hour_doc(settings, SAMPLE_LOG_DIR, hour, doc)
    return result.rows, result.version, state.bootstrap_reason


def sampled_hours(settings: Settings, start: datetime, end: datetime) -> set[datetime]:
    """Hours in [start, end) whose samples were built (zero rows or more)."""
    return hours_with_docs(settings, SAMPLE_LOG_DIR, start, end)
