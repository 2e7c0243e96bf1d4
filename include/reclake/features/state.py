"""Rolling per-entity window state: what makes one hour of samples cost the same whatever the
length of history.

state(H) holds, for every entity with activity in [H - max look-back, H), each window sum
over [H - w, H) and (users) the newest N plays of the sequence look-back. One hour's step

    state(H) = state(H - 1h) + tile(H - 1h) - tile(H - 1h - w)   for each window w

reads the previous state and the tiles of at most 1 + (number of window lengths) hours; the
sequence merges the kept plays with hour H - 1h's plays and drops those now out of the
look-back. That is exact: a play that ages out is older than every play kept, so the kept
ones are still the newest of the shorter range. Entities whose sums are all 0 and whose
sequence is empty leave the state (a missing entity reads as zeros).

Without a usable state(H - 1h) (first run, a gap, changed definitions, or tiles it consumed
were rebuilt since) state(H) is bootstrapped from the tiles of [H - look-back, H) in one
aggregation. States persist as Delta tables (features/<entity>_window_state, one `hour`
per state) with one meta file per hour under features/_window_state recording the
definitions and the tile-table versions it was computed from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reclake import lakefs
from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    RECENT_PLAYS,
    STATE_PLAY_FIELDS,
    STATE_PLAYS_TYPE,
    Entity,
    FeatureDefinitions,
)
from reclake.features.tiles import hour_json_uri, hours_predicate, sql_timestamp, tile_builds
from reclake.io import ensure_table, is_delta_table, read_table, replace_where
from reclake.maintenance.deltalog import latest_version
from reclake.tables import WINDOW_STATE_TABLES, TableSpec, table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

STATE_META_DIR = "features/_window_state"


@dataclass(frozen=True)
class StateResult:
    """What one build_window_states run did."""

    start: str
    end: str
    bootstrap_reason: str | None  # why the first hour was computed from tiles; None: stepped
    rows: dict[str, int]  # state table -> rows written over all hours


def state_spec(entity: Entity) -> TableSpec:
    """The Delta table holding an entity's window states."""
    return WINDOW_STATE_TABLES[entity.state_table]


def definitions_fingerprint(definitions: FeatureDefinitions) -> str:
    """A stable id of the definitions and of the state's columns: a state computed for other
    definitions, or stored in another form, is never reused."""
    forms = [definitions.state_ddl(e) for e in definitions.entities]
    return hashlib.sha256(repr((definitions, forms)).encode("utf-8")).hexdigest()[:16]


# ---- pure transforms ------------------------------------------------------------------------


def _hour_index(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f"unix_seconds({column}) DIV 3600")


def _finish(grouped: DataFrame, entity: Entity, hour: datetime, defs: FeatureDefinitions):
    """Trim the sequence (`_plays`, newest first) to the look-back and the N newest, drop empty
    entities, add hour/date."""
    from pyspark.sql import functions as F

    sums = [name for name, _, _ in defs.state_sums(entity)]
    keep = F.lit(False)
    for name in sums:
        keep = keep | (F.col(name) != 0)
    if entity.play_sequence:
        since = F.expr(sql_timestamp(hour - timedelta(hours=defs.sequence_lookback_hours)))
        # Newest first, so the plays inside the look-back are a prefix: filter keeps the order.
        recent = F.filter("_plays", lambda x: x["event_time"] >= since)
        newest = F.slice(recent, 1, defs.sequence_length)
        grouped = grouped.withColumn(RECENT_PLAYS, newest.cast(STATE_PLAYS_TYPE))
        keep = keep | (F.size(RECENT_PLAYS) > 0)
    out = grouped.filter(keep).withColumns(
        {"hour": F.expr(sql_timestamp(hour)), "date": F.lit(parse_utc(hour).date())}
    )
    return out.select(*(name for name, _ in defs.state_columns(entity)))


def _newest_first(tile_plays: Column) -> Column:
    """Tile plays newest first by (event_time, event_id), in the state's form (no event_id)."""
    from pyspark.sql import functions as F

    ordered = F.sort_array(tile_plays, asc=False)
    return F.transform(ordered, lambda x: F.struct(*(x[f].alias(f) for f, _ in STATE_PLAY_FIELDS)))


def bootstrap_state(
    tiles: DataFrame,
    entity: Entity,
    hour: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """state(hour) straight from an entity's tiles: conditional sums over [hour - lookback,
    hour) (tiles outside that range are ignored)."""
    from pyspark.sql import functions as F

    hour = parse_utc(hour)
    lo = hour - timedelta(hours=definitions.max_lookback_hours)
    t = tiles.filter((F.col("hour") >= lo) & (F.col("hour") < hour))
    now = int(hour.timestamp()) // 3600
    aggs = [
        F.coalesce(F.sum(F.when(_hour_index("hour") >= now - hours, F.col(source))), F.lit(0))
        .cast("bigint")
        .alias(name)
        for name, source, hours in definitions.state_sums(entity)
    ]
    if entity.play_sequence:
        aggs.append(_newest_first(F.flatten(F.collect_list(RECENT_PLAYS))).alias("_plays"))
    grouped = t.groupBy(F.col(entity.key)).agg(*aggs)
    return _finish(grouped, entity, hour, definitions)


def step_tile_hours(
    hour: datetime, definitions: FeatureDefinitions = DEFINITIONS
) -> list[datetime]:
    """Tile hours a step to state(hour) reads: hour - 1h and the hours leaving each window."""
    entering = parse_utc(hour) - HOUR
    windows = {w.hours for w in (*definitions.windows, *definitions.category_windows)}
    return sorted({entering, *(entering - timedelta(hours=h) for h in windows)})


def step_state(
    previous: DataFrame,
    tiles: DataFrame,
    entity: Entity,
    hour: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """state(hour) from state(hour - 1h) and the tiles of step_tile_hours(hour) (tiles of
    other hours are ignored)."""
    from pyspark.sql import functions as F

    hour = parse_utc(hour)
    entering = hour - HOUR
    t = tiles.filter(F.col("hour").isin(step_tile_hours(hour, definitions)))
    is_new = F.col("hour") == F.expr(sql_timestamp(entering))
    names = [name for name, _, _ in definitions.state_sums(entity)]
    contributions = []
    for name, source, hours in definitions.state_sums(entity):
        leaving = F.col("hour") == F.expr(sql_timestamp(entering - timedelta(hours=hours)))
        delta = F.when(is_new, F.col(source)).when(leaving, -F.col(source)).otherwise(F.lit(0))
        contributions.append(delta.cast("bigint").alias(name))
    # Only the sums go through the aggregate, a plain code-generated hash aggregate; the plays
    # join afterwards. Carrying the play arrays through it (collect_list) made it an
    # interpreted object aggregate, and the whole step twice as slow.
    changes = t.select(entity.key, *contributions)
    both = previous.select(entity.key, *names).unionByName(changes)
    out = both.groupBy(entity.key).agg(*(F.sum(n).cast("bigint").alias(n) for n in names))
    if entity.play_sequence:
        # One state row and one tile per entity and hour. Hour H - 1h's plays are newer than
        # every play the previous state kept: the sequence is those plays, then the kept ones.
        kept = previous.select(entity.key, F.col(RECENT_PLAYS).alias("_kept"))
        new = t.filter(is_new).select(entity.key, _newest_first(RECENT_PLAYS).alias("_new"))
        out = out.join(kept, entity.key, "left").join(new, entity.key, "left")
        empty = F.array().cast(STATE_PLAYS_TYPE)
        plays = F.concat(F.coalesce("_new", empty), F.coalesce("_kept", empty))
        out = out.withColumn("_plays", plays)
    return _finish(out, entity, hour, definitions)


# ---- I/O ------------------------------------------------------------------------------------


def read_tiles(
    spark: SparkSession,
    settings: Settings,
    entity: Entity,
    hours: list[datetime],
    version: int | None = None,
) -> DataFrame:
    """An entity's tiles of exactly these hours (date partitions pruned, hour stats skip the
    rest), optionally as of a table version."""
    from pyspark.sql import functions as F

    tiles = read_table(spark, table(entity.tile_table), settings, version)
    return tiles.filter(F.expr(hours_predicate(hours, "hour", "date")))


def read_states(
    spark: SparkSession,
    settings: Settings,
    entity: Entity,
    hours: list[datetime],
) -> DataFrame:
    """The stored states of an entity for exactly these hours."""
    from pyspark.sql import functions as F

    states = read_table(spark, state_spec(entity), settings)
    return states.filter(F.expr(hours_predicate(hours, "hour", "date")))


def tile_versions(
    settings: Settings, definitions: FeatureDefinitions = DEFINITIONS
) -> dict[str, int]:
    """The current Delta version of every entity's tile table (read from the log, no JVM)."""
    return {
        e.tile_table: latest_version(table(e.tile_table).uri(settings))
        for e in definitions.entities
    }


def _meta_uri(settings: Settings, hour: datetime) -> str:
    return hour_json_uri(settings, STATE_META_DIR, hour)


def stale_reason(
    settings: Settings,
    hour: datetime,
    versions: dict[str, int],
    definitions: FeatureDefinitions = DEFINITIONS,
) -> str | None:
    """Why the stored state(hour) must not be stepped from (None: it is usable).

    Usable means: all entities' states of that hour were written (the meta file comes last),
    for these definitions, and no tile hour it depends on ([hour - lookback, hour)) was
    rebuilt by a tile build whose commit is newer than the tile versions it read.
    """
    uri = _meta_uri(settings, hour)
    if not lakefs.exists(uri):
        return "no stored state"
    meta = lakefs.read_json(uri)
    if meta.get("definitions") != definitions_fingerprint(definitions):
        return "computed for other feature definitions"
    read = meta.get("tile_versions", {})
    if any(read.get(t, -1) > v for t, v in versions.items()) or set(read) != set(versions):
        return "tile tables were recreated since"
    hour = parse_utc(hour)
    lookback = timedelta(hours=definitions.max_lookback_hours)
    needed = {iso(h) for h in hours_between(hour - lookback, hour)}
    # A build of arrival hour A rebuilds event hours within [A - lateness, A + 1h].
    lateness = timedelta(hours=settings.allowed_lateness_hours)
    for marker in tile_builds(settings, hour - lookback - HOUR, hour + lateness):
        built = marker.get("versions", {})
        newer = any(built.get(t, -1) > read[t] for t in read)
        if newer and needed & set(marker.get("rebuilt_hours", [])):
            return f"tiles rebuilt since by arrival hour {marker['arrival_hour']}"
    return None


def _ensure_state_table(
    spark: SparkSession, settings: Settings, entity: Entity, definitions: FeatureDefinitions
) -> None:
    """Create the state table, or replace it when the definitions changed its columns (it is a
    cache: every state is recomputable from the tiles)."""
    from reclake.io import schema_from_ddl

    spec = state_spec(entity)
    ddl = definitions.state_ddl(entity)
    uri = spec.uri(settings)
    if is_delta_table(spark, uri):
        want = schema_from_ddl(spark, ddl)
        if _shape(read_table(spark, spec, settings).schema) == _shape(want):
            return
        empty = spark.createDataFrame([], want)
        writer = empty.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        writer.partitionBy(*spec.partition_by).save(uri)
        return
    ensure_table(spark, spec, ddl, settings)


def _shape(schema) -> list[tuple[str, str]]:
    """Column names and types, nullability aside (Delta stores nested fields as nullable)."""
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def build_window_states(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    definitions: FeatureDefinitions = DEFINITIONS,
    bootstrap: bool = False,
) -> StateResult:
    """Compute and store state(H) of every entity for hours [start, end): step from the stored
    state of start - 1h when stale_reason() allows, else bootstrap (or when `bootstrap`).

    The tiles of [start - lookback, end - 1h] must be final (build_training_samples checks).
    Re-running rewrites the same hours (replaceWhere on `hour`) with the same content.
    """
    start, end = parse_utc(start), parse_utc(end)
    hours = list(hours_between(start, end))
    if not hours:
        raise ValueError(f"empty interval [{iso(start)}, {iso(end)})")
    # Pin the tile versions: every hour of this run reads the same tiles and records them.
    versions = tile_versions(settings, definitions)
    reason = (
        "asked for" if bootstrap else stale_reason(settings, start - HOUR, versions, definitions)
    )
    step_first = reason is None
    rows: dict[str, int] = {}
    lookback = timedelta(hours=definitions.max_lookback_hours)
    for entity in definitions.entities:
        _ensure_state_table(spark, settings, entity, definitions)
    for n, hour in enumerate(hours):
        for entity in definitions.entities:
            version = versions[entity.tile_table]
            if n == 0 and not step_first:
                tiles = read_tiles(
                    spark, settings, entity, list(hours_between(hour - lookback, hour)), version
                )
                state = bootstrap_state(tiles, entity, hour, definitions)
            else:
                previous = read_states(spark, settings, entity, [hour - HOUR])
                tiles = read_tiles(
                    spark, settings, entity, step_tile_hours(hour, definitions), version
                )
                state = step_state(previous, tiles, entity, hour, definitions)
            spec = state_spec(entity)
            result = replace_where(state, spec, settings, hours_predicate([hour], "hour", "date"))
            rows[spec.name] = rows.get(spec.name, 0) + result.rows
        meta = {
            "hour": iso(hour),
            "definitions": definitions_fingerprint(definitions),
            "tile_versions": versions,
            "bootstrapped": n == 0 and not step_first,
        }
        lakefs.write_json(_meta_uri(settings, hour), meta)
    return StateResult(iso(start), iso(end), reason, rows)
