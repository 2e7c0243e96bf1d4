"""Window sums and play sequences for every hour of an interval in one set-based computation,
from the hourly tiles and one stored checkpoint: what makes samples cost follow their rows,
not the number of hours or the length of history.

For an entity and a window of w hours, tile hour h counts in the window of sample hour H iff
h is in [H - w, H): it *enters* at H = h + 1h and *leaves* at H = h + w + 1h. So every window
sum of every hour H after a base hour B is

    sum(H) = base(B) + (tiles entering in (B, H]) - (tiles leaving in (B, H])

a running sum over time of signed tile rows: one sort per entity (a window function), however
many hours the interval spans. The sequence (the newest N plays of the look-back) ranks the
plays of the base and of the tiles in (event_time, event_id) order; the running count of
plays before H then names the N newest ones, picked by an equi-join.

The base is the stored state of start - 1h (`features/<entity>_window_state`, one `hour` per
checkpoint, with a meta file under features/_window_state recording the definitions and the
tile versions it was computed from) when it is still usable, else nothing: then the tiles of
[start - look-back, ...) are read instead (a bootstrap). Each run stores the state of its last
hour, so the next hourly run reads that checkpoint and a few tile hours, not a week of tiles.
That one-hour run after a stored base (the hourly DAG's) needs no sort: its values are a sum
per entity and its sequence a concatenation (step_values).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reclake import lakefs, sqltext
from reclake.config import Settings
from reclake.features.definitions import (
    DEFINITIONS,
    RECENT_PLAYS,
    STATE_PLAY_FIELDS,
    STATE_PLAYS_TYPE,
    Entity,
    FeatureDefinitions,
)
from reclake.features.tiles import tile_builds
from reclake.hourlog import hour_doc_uri
from reclake.io import ensure_table, is_delta_table, read_table, replace_where
from reclake.maintenance.deltalog import latest_version
from reclake.tables import WINDOW_STATE_TABLES, TableSpec, table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

STATE_META_DIR = "features/_window_state"


@dataclass(frozen=True)
class StateResult:
    """What one interval's window computation stored."""

    start: str
    end: str
    checkpoint: str  # the hour whose state was stored (end - 1h)
    bootstrap_reason: str | None  # why the tiles were read instead of a stored state
    rows: dict[str, int]  # state table -> rows stored for the checkpoint


def state_spec(entity: Entity) -> TableSpec:
    """The Delta table holding an entity's window states."""
    return WINDOW_STATE_TABLES[entity.state_table]


def definitions_fingerprint(definitions: FeatureDefinitions) -> str:
    """A stable id of the definitions and of the state's columns: a state computed for other
    definitions, or stored in another form, is never reused."""
    forms = [definitions.state_ddl(e) for e in definitions.entities]
    return hashlib.sha256(repr((definitions, forms)).encode("utf-8")).hexdigest()[:16]


# ---- pure transforms ------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """Where the running window sums of an interval start: the stored state of `hour`
    (stored=True), or nothing at `hour` (stored=False: every tile from `hour` on is read)."""

    hour: datetime
    stored: bool

    def covered_from(self, window_hours: int) -> datetime:
        """The oldest tile hour the base already counts in a window of that many hours."""
        return self.hour - timedelta(hours=window_hours) if self.stored else self.hour

    def tile_ranges(
        self, last: datetime, definitions: FeatureDefinitions = DEFINITIONS
    ) -> list[tuple[datetime, datetime]]:
        """[lo, hi) tile hours the sums of hours (base, last] read: those entering, and those
        leaving each window (merged, so a long interval is one range)."""
        spans = [(self.hour, last)]
        for hours in _window_lengths(definitions):
            w = timedelta(hours=hours)
            spans.append((self.covered_from(hours), last - w))
        return _merge([(lo, hi) for lo, hi in spans if lo < hi])


def _window_lengths(definitions: FeatureDefinitions) -> list[int]:
    return sorted({w.hours for w in (*definitions.windows, *definitions.category_windows)})


def _merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _hour_index(column: str) -> Column:
    """Whole hours since the epoch: cheaper to sort and compare than timestamps."""
    from pyspark.sql import functions as F

    return F.expr(f"unix_seconds({column}) DIV 3600")


def _index(hour: datetime) -> int:
    return int(parse_utc(hour).timestamp()) // 3600


def window_values(
    base_state: DataFrame | None,
    tiles: DataFrame,
    probes: DataFrame,
    entity: Entity,
    base: Base,
    last: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """For every probe (entity key, hour H), base.hour < H <= last: each window sum over [H - w, H)
    and (users) the newest plays of the look-back, in the state table's columns.

    `base_state` holds the state of base.hour (None when not base.stored); tiles outside
    base.tile_ranges(last) are ignored, so callers may pass more.
    """
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    key = entity.key
    sums = definitions.state_sums(entity)
    names = [name for name, _, _ in sums]
    b, last = _index(base.hour), _index(last)
    t = tiles.withColumn("_h", _hour_index("hour"))

    def rows(frame: DataFrame, at: Column, values: list[Column], plays: Column) -> DataFrame:
        cols = [v.cast("bigint").alias(n) for n, v in zip(names, values, strict=True)]
        return frame.select(key, at.alias("_t"), *cols, plays.alias("_n"), F.lit(False).alias("_p"))

    seq = entity.play_sequence
    no_plays = F.lit(0)
    parts = []
    if base_state is not None:
        n = F.size(RECENT_PLAYS) if seq else no_plays
        parts.append(rows(base_state, F.lit(b), [F.col(c) for c in names], n))
    entering = t.filter((F.col("_h") >= b) & (F.col("_h") < last))
    n = F.size(RECENT_PLAYS) if seq else no_plays
    parts.append(rows(entering, F.col("_h") + 1, [F.col(src) for _, src, _ in sums], n))
    for hours in _window_lengths(definitions):
        leaving = t.filter(
            (F.col("_h") >= _index(base.covered_from(hours))) & (F.col("_h") < last - hours)
        )
        values = [-F.col(src) if h == hours else F.lit(0) for _, src, h in sums]
        parts.append(rows(leaving, F.col("_h") + hours + 1, values, no_plays))
    asked = probes.select(
        key,
        _hour_index("hour").alias("_t"),
        *[F.lit(0).cast("bigint").alias(c) for c in names],
        F.lit(0).alias("_n"),
        F.lit(True).alias("_p"),
    )
    union = parts[0]
    for part in [*parts[1:], asked]:
        union = union.unionByName(part)
    # A probe sorts after the changes of its own hour: tile h counts from hour h + 1 on.
    frame = W.partitionBy(key).orderBy("_t", "_p").rowsBetween(W.unboundedPreceding, 0)
    running = union.select(
        key,
        "_t",
        "_p",
        *[F.sum(c).over(frame).alias(c) for c in names],
        F.sum("_n").over(frame).alias("_c"),
    ).filter("_p")
    if seq:
        running = running.join(
            _sequences(base_state, entering, running, entity, definitions), [key, "_t"], "left"
        )
        empty = F.array().cast(STATE_PLAYS_TYPE)
        running = running.withColumn(RECENT_PLAYS, F.coalesce(RECENT_PLAYS, empty))
    hour = F.timestamp_seconds(F.col("_t") * 3600)
    out = running.withColumns({"hour": hour, "date": F.to_date(hour)})
    return out.select(*(name for name, _ in definitions.state_columns(entity)))


def step_values(
    base_state: DataFrame,
    tiles: DataFrame,
    entity: Entity,
    hour: datetime,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> DataFrame:
    """The values at `hour` of every entity that the stored state of hour - 1h or the tiles
    entering or leaving a window at `hour` know, in the state table's columns.

    The same values window_values gives when its interval is the one hour after a stored
    base, computed the cheap way: when every probe sits at one hour the running sum is a plain
    sum per entity (a hash aggregate, no sort), and that hour's plays are newer than every play
    the base kept, so the sequence is a concatenation. Tiles of other hours are ignored.
    """
    from pyspark.sql import functions as F

    key = entity.key
    sums = definitions.state_sums(entity)
    names = [name for name, _, _ in sums]
    now = _index(hour)
    t = tiles.withColumn("_h", _hour_index("hour"))
    # Tile hour h enters at h + 1h and leaves a window of w hours at h + w + 1h.
    leaves = {w: now - 1 - w for w in _window_lengths(definitions)}
    t = t.filter(F.col("_h").isin(now - 1, *leaves.values()))
    entering = F.col("_h") == now - 1
    deltas = [
        F.when(entering, F.col(src))
        .when(F.col("_h") == leaves[w], -F.col(src))
        .otherwise(F.lit(0))
        .cast("bigint")
        .alias(name)
        for name, src, w in sums
    ]
    # Only the sums go through the aggregate: carrying the play arrays through it would make
    # it an interpreted object aggregate; they join afterwards (one tile row per entity-hour).
    both = base_state.select(key, *names).unionByName(t.select(key, *deltas))
    out = both.groupBy(key).agg(*(F.sum(n).cast("bigint").alias(n) for n in names))
    if entity.play_sequence:
        ordered = F.sort_array(RECENT_PLAYS, asc=False)  # (event_time, event_id) newest first
        new = t.filter(entering).select(key, _state_form(ordered).alias("_new"))
        kept = base_state.select(key, F.col(RECENT_PLAYS).alias("_kept"))
        out = out.join(kept, key, "left").join(new, key, "left")
        empty = F.array().cast(STATE_PLAYS_TYPE)
        plays = F.concat(F.coalesce("_new", empty), F.coalesce("_kept", empty))
        since = F.timestamp_seconds(F.lit((now - definitions.sequence_lookback_hours) * 3600))
        # Newest first, so the plays inside the look-back are a prefix.
        recent = F.filter(plays, lambda x: x["event_time"] >= since)
        newest = F.slice(recent, 1, definitions.sequence_length)
        out = out.withColumn(RECENT_PLAYS, newest.cast(STATE_PLAYS_TYPE))
    at = F.timestamp_seconds(F.lit(now * 3600))
    out = out.withColumns({"hour": at, "date": F.to_date(at)})
    return out.select(*(name for name, _ in definitions.state_columns(entity)))


def _sequences(
    base_state: DataFrame | None,
    entering: DataFrame,
    running: DataFrame,
    entity: Entity,
    definitions: FeatureDefinitions,
) -> DataFrame:
    """(key, _t, recent_plays) for the probes with plays before them: the N newest plays before
    H within the look-back, newest first (ties: larger event_id first)."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    key = entity.key
    # Base plays are older than every tile play read here and kept newest first, so their
    # order among themselves is their array position reversed; tile plays sort by event_id.
    tile_plays = entering.select(key, F.explode(RECENT_PLAYS).alias("p")).select(
        key, "p.event_time", "p.item_id", F.lit(0).alias("_pos"), "p.event_id"
    )
    plays = tile_plays
    if base_state is not None:
        kept = base_state.select(key, F.posexplode(RECENT_PLAYS).alias("_pos", "p")).select(
            key,
            "p.event_time",
            "p.item_id",
            (-F.col("_pos")).alias("_pos"),
            F.lit(None).cast("string").alias("event_id"),
        )
        plays = kept.unionByName(tile_plays)
    order = W.partitionBy(key).orderBy("event_time", "_pos", "event_id")
    ranked = plays.select(key, "event_time", "item_id", F.row_number().over(order).alias("_rn"))
    n = definitions.sequence_length
    lookback = definitions.sequence_lookback_hours
    # The plays before H are ranks 1.._c: the newest N are the last N of them.
    picks = running.filter(F.col("_c") > 0).select(
        key,
        "_t",
        F.explode(F.sequence(F.greatest(F.col("_c") - n + 1, F.lit(1)), F.col("_c"))).alias("_rn"),
    )
    since = F.timestamp_seconds((F.col("_t") - lookback) * 3600)
    picked = picks.join(ranked, [key, "_rn"]).filter(F.col("event_time") >= since)
    newest = F.sort_array(F.collect_list(F.struct("_rn", "event_time", "item_id")), asc=False)
    return picked.groupBy(key, "_t").agg(
        _state_form(newest).cast(STATE_PLAYS_TYPE).alias(RECENT_PLAYS)
    )


def _state_form(plays: Column) -> Column:
    """An array of play structs reduced to the state's play fields, order kept."""
    from pyspark.sql import functions as F

    return F.transform(plays, lambda x: F.struct(*(x[f].alias(f) for f, _ in STATE_PLAY_FIELDS)))


def nonempty(values: DataFrame, entity: Entity, definitions: FeatureDefinitions = DEFINITIONS):
    """The rows worth storing as a state: some window sum is non-zero or a play is kept (a
    missing entity reads as zeros)."""
    from pyspark.sql import functions as F

    # One array test, not a chain of ORs: Spark's constraint propagation canonicalizes such a
    # chain over and over, and a few dozen columns made planning take minutes.
    sums = F.array(*[F.col(name) for name, _, _ in definitions.state_sums(entity)])
    keep = F.exists(sums, lambda x: x != 0)
    if entity.play_sequence:
        keep = keep | (F.size(RECENT_PLAYS) > 0)
    return values.filter(keep)


# ---- I/O ------------------------------------------------------------------------------------


def read_states(
    spark: SparkSession,
    settings: Settings,
    entity: Entity,
    hours: list[datetime],
) -> DataFrame:
    """The stored states of an entity for exactly these hours."""
    from pyspark.sql import functions as F

    states = read_table(spark, state_spec(entity), settings)
    return states.filter(F.expr(sqltext.hours_in(hours, "hour", "date")))


def tile_versions(
    settings: Settings, definitions: FeatureDefinitions = DEFINITIONS
) -> dict[str, int]:
    """The current Delta version of every entity's tile table (read from the log, no JVM)."""
    return {
        e.tile_table: latest_version(table(e.tile_table).uri(settings))
        for e in definitions.entities
    }


def _meta_uri(settings: Settings, hour: datetime) -> str:
    return hour_doc_uri(settings, STATE_META_DIR, hour)


def stale_reason(
    settings: Settings,
    hour: datetime,
    versions: dict[str, int],
    definitions: FeatureDefinitions = DEFINITIONS,
) -> str | None:
    """Why the stored state(hour) must not serve as a base (None: it is usable).

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


def read_tile_ranges(
    spark: SparkSession,
    settings: Settings,
    entity: Entity,
    ranges: list[tuple[datetime, datetime]],
    version: int | None = None,
) -> DataFrame:
    """An entity's tiles of some [lo, hi) hour ranges, optionally as of a table version."""
    from pyspark.sql import functions as F

    tiles = read_table(spark, table(entity.tile_table), settings, version)
    return tiles.filter(F.expr(sqltext.hour_ranges(ranges, "hour", "date")))


def choose_base(
    settings: Settings,
    start: datetime,
    versions: dict[str, int],
    definitions: FeatureDefinitions = DEFINITIONS,
    bootstrap: bool = False,
) -> tuple[Base, str | None]:
    """The base of an interval starting at `start`, and why it is not the stored state of
    start - 1h (None: it is)."""
    previous = start - HOUR
    reason = "asked for" if bootstrap else stale_reason(settings, previous, versions, definitions)
    if reason is None:
        return Base(previous, stored=True), None
    return Base(start - timedelta(hours=definitions.max_lookback_hours), stored=False), reason


def interval_windows(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    probes: dict[str, DataFrame] | None = None,
    definitions: FeatureDefinitions = DEFINITIONS,
    bootstrap: bool = False,
) -> tuple[dict[str, DataFrame], StateResult]:
    """Window values of every entity at its probes (key, hour in [start, end)), and the state
    of hour end - 1h stored as the next run's checkpoint (one commit per entity).

    The values come back persisted: the caller unpersists them. The tiles of
    [start - lookback, end - 1h) must be final (build_training_samples checks).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    start, end = parse_utc(start), parse_utc(end)
    if not list(hours_between(start, end)):
        raise ValueError(f"empty interval [{iso(start)}, {iso(end)})")
    last = end - HOUR
    # Pin the tile versions: every entity reads the same tiles, and the meta records them.
    versions = tile_versions(settings, definitions)
    base, reason = choose_base(settings, start, versions, definitions, bootstrap)
    values: dict[str, DataFrame] = {}
    rows: dict[str, int] = {}
    for entity in definitions.entities:
        _ensure_state_table(spark, settings, entity, definitions)
        key = entity.key
        base_state = read_states(spark, settings, entity, [base.hour]) if base.stored else None
        ranges = base.tile_ranges(last, definitions)
        tiles = read_tile_ranges(spark, settings, entity, ranges, versions[entity.tile_table])
        if base_state is not None and start == last:
            # The hourly path: probes of one hour after a stored base. Probes the step does
            # not know have no history: no row, and the samples read zeros.
            entity_values = step_values(base_state, tiles, entity, last, definitions)
        else:
            # The checkpoint asks for every entity the base or the tiles know at the last hour.
            known = tiles.select(key)
            if base_state is not None:
                known = known.unionByName(base_state.select(key))
            asked = known.select(key, F.lit(last).cast("timestamp").alias("hour"))
            if probes and entity.name in probes:
                asked = probes[entity.name].select(key, "hour").unionByName(asked)
            entity_values = window_values(
                base_state, tiles, asked.distinct(), entity, base, last, definitions
            )
        entity_values = entity_values.persist(StorageLevel.MEMORY_AND_DISK)
        values[entity.name] = entity_values
        state = nonempty(entity_values.filter(F.col("hour") == F.lit(last)), entity, definitions)
        spec = state_spec(entity)
        result = replace_where(state, spec, settings, sqltext.hours_in([last], "hour", "date"))
        rows[spec.name] = result.rows
    meta = {
        "hour": iso(last),
        "definitions": definitions_fingerprint(definitions),
        "tile_versions": versions,
        "base": {"hour": iso(base.hour), "stored": base.stored},
    }
    lakefs.write_json(_meta_uri(settings, last), meta)
    return values, StateResult(iso(start), iso(end), iso(last), reason, rows)


def build_window_states(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    definitions: FeatureDefinitions = DEFINITIONS,
    bootstrap: bool = False,
) -> StateResult:
    """Store the state of hour end - 1h, computed over [start, end) from the state of
    start - 1h when usable, else from the tiles (or when `bootstrap`)."""
    values, result = interval_windows(
        spark, settings, start, end, None, definitions, bootstrap=bootstrap
    )
    for df in values.values():
        df.unpersist()
    return result
