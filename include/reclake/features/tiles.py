"""Hourly feature tiles: one row per (entity, event hour) with the hour's partial aggregates.

A tile is a pure function of bronze's in-lateness events of its hour, so rebuilding it is
always safe. `build_tiles(start, end)` processes the bronze rows that *arrived* in
[start, end): it rebuilds every event hour those rows touch (late events fold into earlier
hours) plus [start, end) itself, and records one build marker per arrival hour, which the
samples' finality check reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from reclake import sqltext
from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    OTHER_CATEGORY,
    RECENT_PLAYS,
    Entity,
    FeatureDefinitions,
    category_tile_column,
)
from reclake.hourlog import hours_with_docs, read_hour_docs, write_hour_doc
from reclake.io import ensure_table, read_table, replace_where
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

TILE_BUILDS_DIR = "features/_tile_builds"


@dataclass(frozen=True)
class TileBuildResult:
    """What one build_tiles run did."""

    start: str
    end: str
    rebuilt_hours: list[str]
    rows: dict[str, int]  # table name -> rows written
    versions: dict[str, int]


# ---- pure transforms ------------------------------------------------------------------------


def category_bucket(category: Column, definitions: FeatureDefinitions) -> Column:
    """The tracked category, or OTHER_CATEGORY when it is missing or not tracked."""
    from pyspark.sql import functions as F

    tracked = category.isin(list(definitions.categories))
    return F.when(tracked, category).otherwise(F.lit(OTHER_CATEGORY))


def tiles_from_events(
    events: DataFrame,
    items: DataFrame | None,
    entity: Entity,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """Aggregate (already filtered) bronze events into one tile row per (entity, event hour)."""
    from pyspark.sql import functions as F

    if entity.category_plays:
        if items is None:
            raise ValueError(f"{entity.name} tiles count plays per category: items are needed")
        cats = items.select("item_id", F.col("category").alias("_category"))
        events = events.join(cats, "item_id", "left").withColumn(
            "_bucket", category_bucket(F.col("_category"), definitions)
        )
    aggs: list[Column] = []
    for a in definitions.aggregations:
        value = F.lit(1) if a.sum_of is None else F.coalesce(F.col(a.sum_of), F.lit(0))
        hit = F.col("event_type") == a.event_type
        aggs.append(F.sum(F.when(hit, value).otherwise(0)).cast("bigint").alias(a.name))
    is_play = F.col("event_type") == "play"
    if entity.category_plays:
        for c in definitions.category_buckets:
            hit = is_play & (F.col("_bucket") == c)
            aggs.append(
                F.sum(F.when(hit, 1).otherwise(0)).cast("bigint").alias(category_tile_column(c))
            )
    if entity.play_sequence:
        # Only the hour's newest plays can ever make a sequence of N: keep N per tile.
        play = F.struct("event_time", "event_id", F.col("item_id").cast("bigint").alias("item_id"))
        newest = F.sort_array(F.collect_list(F.when(is_play, play)), asc=False)
        aggs.append(F.slice(newest, 1, definitions.sequence_length).alias(RECENT_PLAYS))
    tiles = (
        events.groupBy(F.col(entity.key).cast("bigint").alias(entity.key), F.col("event_hour"))
        .agg(*aggs)
        .withColumnRenamed("event_hour", "hour")
        .withColumn("date", F.to_date("hour"))
    )
    return tiles.select(*(name for name, _ in definitions.tile_columns(entity)))


# ---- I/O ------------------------------------------------------------------------------------


def dates_of(hours: list[datetime]) -> list[date]:
    """The distinct UTC dates of some hours (the date partitions they live in)."""
    return sorted({h.date() for h in hours})


def touched_hours(
    spark: SparkSession, settings: Settings, start: datetime, end: datetime
) -> list[datetime]:
    """Event hours to rebuild for arrival hours [start, end): those hours themselves plus every
    earlier hour an in-lateness event arriving then belongs to."""
    from pyspark.sql import functions as F

    lateness = timedelta(hours=settings.allowed_lateness_hours)
    # In-lateness arrivals belong to [start - lateness, end]; the extra hour absorbs clock skew.
    lo, hi = start - lateness, end + HOUR
    bronze = read_table(spark, table("events"), settings)
    arrived = (
        bronze.filter(F.col("event_date").between(lo.date(), hi.date()))
        .filter((F.col("event_hour") >= lo) & (F.col("event_hour") < hi))
        .filter((F.col("arrival_hour") >= start) & (F.col("arrival_hour") < end))
        .filter(~F.col("beyond_lateness"))
        .select("event_hour")
    )
    return sorted(collect_hours(arrived, "event_hour") | set(hours_between(start, end)))


def collect_hours(df: DataFrame, column: str) -> set[datetime]:
    """The distinct hours of a timestamp column, as aware UTC datetimes."""
    from pyspark.sql import functions as F

    # Epoch seconds: collected timestamps would come back naive in the driver's local zone.
    rows = df.select(F.expr(f"unix_seconds({column})").alias("s")).distinct().collect()
    return {datetime.fromtimestamp(r["s"], UTC) for r in rows}


def build_tiles(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> TileBuildResult:
    """Rebuild the user and item tiles of every event hour touched by arrivals in [start, end)."""
    from pyspark.sql import functions as F

    start, end = parse_utc(start), parse_utc(end)
    arrival_hours = list(hours_between(start, end))
    hours = touched_hours(spark, settings, start, end) if arrival_hours else []
    rows: dict[str, int] = {}
    versions: dict[str, int] = {}
    events = None
    if hours:
        events = (
            read_table(spark, table("events"), settings)
            .filter(F.col("event_date").isin(dates_of(hours)))
            .filter(F.col("event_hour").isin(hours))
            .filter(~F.col("beyond_lateness"))
        )
    for entity in definitions.entities:
        spec = table(entity.tile_table)
        ensure_table(spark, spec, definitions.tile_ddl(entity), settings)
        if events is None:
            continue
        items = read_table(spark, table("items"), settings) if entity.category_plays else None
        tiles = tiles_from_events(events, items, entity, definitions)
        result = replace_where(tiles, spec, settings, sqltext.hours_in(hours, "hour", "date"))
        rows[spec.name], versions[spec.name] = result.rows, result.version
    for h in arrival_hours:
        record_tile_build(settings, h, rebuilt=hours, versions=versions)
    return TileBuildResult(iso(start), iso(end), [iso(h) for h in hours], rows, versions)


def record_tile_build(
    settings: Settings,
    arrival_hour: datetime,
    rebuilt: list[datetime] | None = None,
    versions: dict[str, int] | None = None,
) -> None:
    """Mark an arrival hour as folded into the tiles (one small file per hour: no races).

    `versions` (tile table -> Delta version written) lets the window state notice that tiles
    it already consumed were rebuilt afterwards.
    """
    doc = {
        "arrival_hour": iso(arrival_hour),
        "rebuilt_hours": [iso(h) for h in rebuilt or []],
        "versions": dict(versions or {}),
    }
    write_hour_doc(settings, TILE_BUILDS_DIR, arrival_hour, doc)


def tile_builds(settings: Settings, start: datetime, end: datetime) -> list[dict]:
    """The build markers of the arrival hours in [start, end) (missing hours are skipped)."""
    return read_hour_docs(settings, TILE_BUILDS_DIR, start, end)


def built_arrival_hours(settings: Settings, start: datetime, end: datetime) -> set[datetime]:
    """The arrival hours in [start, end) that build_tiles has processed."""
    return hours_with_docs(settings, TILE_BUILDS_DIR, start, end)
