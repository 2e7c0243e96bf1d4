"""Orchestration and I/O of the ingest: the drops of an interval's arrival hours -> bronze +
quarantine, one set-based pass (two commits) per chunk of hours."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F

from reclake import io, lakefs
from reclake.config import Settings
from reclake.ingest import rules, transform
from reclake.ingest.layout import (
    DROP_PATH_PIECES,
    DuplicateGroup,
    IngestError,
    LineGroup,
    block_offsets,
    check_drop_files,
    drop_uri,
    drops_root_uri,
    hour_counts,
    readable_files,
    reconcile,
    replace_predicates,
    split_event_hours,
    valid_lines_by_event_hour,
)
from reclake.ingest.log import (
    LANDING_SOURCE,
    ChunkReport,
    HourReport,
    IngestReport,
    save_ingest_log,
)
from reclake.maintenance.deltalog import latest_version
from reclake.tables import BRONZE_EVENTS_DDL, QUARANTINE_EVENTS_DDL, TableSpec, table
from reclake.timeutil import chunks, hours_between, iso, parse_utc

LINE_SCHEMA = (
    "value STRING, source_file STRING, arrival_hour TIMESTAMP, block_start BIGINT, row_id BIGINT"
)
# The drop folders' date=/hour= values, read as text exactly as the folder names spell them.
DROP_PARTITION_DDL = ", ".join(f"{name} STRING" for _, name in DROP_PATH_PIECES if name)
# Valid lines of the event hours with fewest lines, up to this many, are broadcast to find
# their copies in bronze (a lookup, not a shuffle of bronze's rows of those hours).
SPARSE_LINES = 100_000
# What each duplicate fate counts as in the ingest log.
DUPLICATE_COUNTS = {
    transform.DUP_IN_DROP: "duplicates_in_drop",
    transform.DUP_IN_BRONZE: "duplicates_in_bronze",
}


def ingest_events(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    after_write: Callable[[str], None] | None = None,
    chunk_hours: int | None = None,
) -> IngestReport:
    """Ingest every arrival hour in [start, end): one pass and two commits per chunk of
    `chunk_hours` (default settings.ingest_chunk_hours), chunks in order; fails on the first
    bad chunk, leaving the earlier ones committed and logged.

    `after_write(table_name)` is called after each table commit (progress hooks, crash tests).
    """
    s, e = parse_utc(start), parse_utc(end)
    versions = prepare_tables(spark, settings)
    passes, hours = [], []
    for chunk_start, chunk_end in chunks(s, e, chunk_hours or settings.ingest_chunk_hours):
        chunk, reports = ingest_chunk(
            spark, settings, chunk_start, chunk_end, versions, after_write
        )
        passes.append(chunk)
        hours.extend(reports)
    return IngestReport(iso(s), iso(e), hours, passes)


def prepare_tables(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Create bronze and quarantine when missing; returns each table's current version."""
    specs = (table("events"), table("quarantine_events"))
    io.ensure_table(spark, specs[0], BRONZE_EVENTS_DDL, settings)
    io.ensure_table(spark, specs[1], QUARANTINE_EVENTS_DDL, settings)
    return {spec.name: latest_version(spec.uri(settings)) for spec in specs}


def validated(lines: DataFrame, settings: Settings) -> DataFrame:
    """The contract's validation of raw lines (see rules.validate), keeping the raw text of
    invalid lines only."""
    checked = rules.validate(lines, settings.max_future_skew_minutes)
    # Only quarantine needs the raw text: do not hold it in memory for valid rows.
    return checked.withColumn("value", F.when(F.col("reason").isNotNull(), F.col("value")))


@dataclass(frozen=True)
class CheckedLines:
    """Validated lines of one pass with lateness columns, their collected LineGroups, and the
    (source_file, block_start) -> offset map that gives their true line numbers."""

    checked: DataFrame
    groups: list[LineGroup]
    offsets: dict[tuple[str, int], int]


def ingest_chunk(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    versions: dict[str, int],
    after_write: Callable[[str], None] | None = None,
) -> tuple[ChunkReport, list[HourReport]]:
    """Ingest the landing drops of the arrival hours [start, end) in one pass (see
    commit_chunk).

    `versions` holds each table's version before the pass and is updated to after it.
    """
    began = time.monotonic()
    lines = read_drops(spark, settings, list(hours_between(start, end)))
    checked = transform.with_lateness(validated(lines, settings), settings.allowed_lateness_hours)
    # Parse the drops once; every count and both writes read this.
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with readable_files():
            groups = collect_line_groups(checked)
            lines = CheckedLines(checked, groups, block_offsets(groups))
            return commit_chunk(spark, settings, start, end, lines, versions, after_write, began)
    finally:
        checked.unpersist()


def commit_chunk(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    lines: CheckedLines,
    versions: dict[str, int],
    after_write: Callable[[str], None] | None,
    began: float,
    source: str = LANDING_SOURCE,
) -> tuple[ChunkReport, list[HourReport]]:
    """Settle the copies of the checked lines of the arrival hours [start, end), replace those
    hours' rows in bronze and in quarantine (one commit each), check the counts, then write
    one log per hour (`source` says where the lines came from; `began`: the pass's start on
    the monotonic clock)."""
    hours = list(hours_between(start, end))
    checked, groups = lines.checked, lines.groups
    duplicate_lines = None
    try:
        valid = checked.where(F.col("reason").isNull())
        in_bronze = bronze_copies(
            spark, settings, start, end, valid, valid_lines_by_event_hour(groups)
        )
        fated = transform.assign_fates(valid.select(*transform.COPY_COLUMNS), in_bronze)
        # Duplicates are few: cache them, count them by hour, and the bronze write removes
        # them from the cached lines without shuffling the rows.
        duplicate_lines = transform.duplicates(fated).persist(StorageLevel.MEMORY_AND_DISK)
        duplicate_groups = collect_duplicate_groups(duplicate_lines)

        bronze_predicate, quarantine_predicate = replace_predicates(start, end)
        bronze = _replace(
            transform.bronze_rows(valid, duplicate_lines),
            table("events"),
            settings,
            bronze_predicate,
            versions,
            after_write,
        )
        offsets = spark.createDataFrame(
            [(f, b, o) for (f, b), o in lines.offsets.items()],
            "source_file STRING, block_start BIGINT, offset BIGINT",
        )
        quarantine = _replace(
            transform.quarantine_rows(checked.where(F.col("reason").isNotNull()), offsets),
            table("quarantine_events"),
            settings,
            quarantine_predicate,
            versions,
            after_write,
        )
    finally:
        if duplicate_lines is not None:
            duplicate_lines.unpersist()

    counts = hour_counts(hours, groups, duplicate_groups)
    problems = reconcile(_run_counts(counts, bronze.rows, quarantine.rows))
    if problems:
        raise IngestError(
            f"counts of arrival hours [{iso(start)}, {iso(end)}) do not reconcile: {problems}"
        )
    duration = time.monotonic() - began
    reports = [
        HourReport(
            arrival_hour=iso(h),
            bronze_version=bronze.version,
            quarantine_version=quarantine.version,
            # The hour's share of the pass, so the logs of a run add up to its time.
            duration_s=round(duration / len(hours), 3),
            source=source,
            **counts[h],
        )
        for h in hours
    ]
    for report in reports:
        save_ingest_log(settings, report)
    chunk = ChunkReport(
        start=iso(start),
        end=iso(end),
        bronze_version=bronze.version,
        quarantine_version=quarantine.version,
        commits=bronze.committed + quarantine.committed,
        duration_s=round(duration, 3),
    )
    return chunk, reports


def drop_files(settings: Settings, arrival_hour: datetime) -> list[str]:
    """URIs of an arrival hour's drop files; a missing drop or a foreign file is an error."""
    folder = drop_uri(settings, arrival_hour)
    if not lakefs.exists(folder):
        raise IngestError(f"no drop for arrival hour {iso(arrival_hour)}: {folder} is missing")
    names = check_drop_files(folder, [f.rsplit("/", 1)[1] for f in lakefs.list_files(folder)])
    return [f"{folder}/{n}" for n in names]


def read_drops(spark: SparkSession, settings: Settings, hours: list[datetime]) -> DataFrame:
    """Every line of the hours' drops, read in one scan, with its position (line_position)."""
    files = [f for h in hours for f in drop_files(settings, h)]
    if not files:
        return spark.createDataFrame([], LINE_SCHEMA)
    return (
        drop_reader(spark, settings, "value STRING").text(files).select("value", *line_position())
    )


def drop_reader(spark: SparkSession, settings: Settings, data_ddl: str) -> DataFrameReader:
    """A DataFrameReader of drop files with the given data columns plus the drop folders'
    date and hour as text columns (so any file reader yields line_position)."""
    return spark.read.schema(f"{data_ddl}, {DROP_PARTITION_DDL}").option(
        "basePath", drops_root_uri(settings)
    )


def line_position() -> list[Column]:
    """Where a line of a drop comes from, for any reader of drop_reader: source_file (relative
    to the landing root), its arrival_hour, the file block a task read and a row id that
    increases by one per line within a block (unique within the scan)."""
    pieces = []
    for text, name in DROP_PATH_PIECES:
        pieces += [F.lit(text)] if text else []
        pieces += [F.col(name)] if name else []
    arrival = F.timestamp_seconds(
        F.unix_date(F.col("date").cast("date")) * 86400 + F.col("hour").cast("int") * 3600
    )
    return [
        F.concat(*pieces, F.lit("/"), F.col("_metadata.file_name")).alias("source_file"),
        arrival.alias("arrival_hour"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
    ]


def collect_line_groups(checked: DataFrame) -> list[LineGroup]:
    """One small aggregate of the checked lines (see LineGroup); it also fills the cache."""
    is_valid = F.col("reason").isNull()
    rows = (
        checked.groupBy(
            "source_file",
            "block_start",
            F.unix_seconds("arrival_hour").alias("arrival_s"),
            "reason",
            F.unix_seconds(F.when(is_valid, F.col("event_hour"))).alias("event_hour_s"),
            F.when(is_valid, F.col("beyond_lateness")).alias("beyond_lateness"),
        )
        .agg(F.min("row_id").alias("first_row_id"), F.count(F.lit(1)).alias("lines"))
        .collect()
    )
    return [
        LineGroup(
            source_file=r["source_file"],
            block_start=r["block_start"],
            arrival_hour=_utc(r["arrival_s"]),
            reason=r["reason"],
            event_hour=_utc(r["event_hour_s"]),
            beyond_lateness=r["beyond_lateness"],
            first_row_id=r["first_row_id"],
            lines=r["lines"],
        )
        for r in rows
    ]


def collect_duplicate_groups(duplicate_lines: DataFrame) -> list[DuplicateGroup]:
    """The duplicates counted by arrival hour, fate and lateness flag."""
    rows = (
        duplicate_lines.groupBy(
            F.unix_seconds("arrival_hour").alias("arrival_s"), "fate", "beyond_lateness"
        )
        .count()
        .collect()
    )
    return [
        DuplicateGroup(
            _utc(r["arrival_s"]), DUPLICATE_COUNTS[r["fate"]], r["beyond_lateness"], r["count"]
        )
        for r in rows
    ]


def bronze_copies(
    spark: SparkSession,
    settings: Settings,
    start: datetime,
    end: datetime,
    valid: DataFrame,
    lines_by_event_hour: dict[datetime, int],
) -> DataFrame:
    """(event_id, event_hour) of the bronze rows from arrival hours outside [start, end) that
    share an event hour with the run's valid lines (`lines_by_event_hour` counts those lines
    per event hour): the only rows a copy of them can be.

    Reads only those event hours (partition pruning on event_date, file skipping on
    event_hour), so the cost follows the rows of those hours, not what bronze holds. The
    sparse hours (few valid lines, e.g. late events' hours) are looked up with their lines'
    keys broadcast; the dense ones (the run's own hours, which bronze barely holds from other
    arrival hours) are read as they are.
    """
    bronze = io.read_table(spark, table("events"), settings)
    outside = (F.col("arrival_hour") < transform.hour_literal(start)) | (
        F.col("arrival_hour") >= transform.hour_literal(end)
    )
    sparse, dense = split_event_hours(lines_by_event_hour, SPARSE_LINES)
    parts = []
    if dense:
        parts.append(bronze.where(outside & _in_event_hours(dense)).select(*transform.BRONZE_KEY))
    if sparse:
        wanted = valid.where(_in_event_hours(sparse)).select(*transform.BRONZE_KEY)
        found = bronze.where(outside & _in_event_hours(sparse)).select(*transform.BRONZE_KEY)
        parts.append(found.join(F.broadcast(wanted), list(transform.BRONZE_KEY), "left_semi"))
    if not parts:
        return bronze.select(*transform.BRONZE_KEY).limit(0)
    return reduce(DataFrame.unionByName, parts)


def _in_event_hours(hours: list[datetime]) -> Column:
    # The date list prunes partitions; the range lets Delta skip files by their event_hour
    # statistics; the list is the exact condition.
    event_hour = F.col("event_hour")
    return (
        F.col("event_date").isin(sorted({h.date() for h in hours}))
        & event_hour.between(hours[0], hours[-1])
        & event_hour.isin(hours)
    )


@dataclass(frozen=True)
class _Written:
    """What one replace_where wrote, and whether it made a commit (Delta skips a write with
    nothing to add or remove)."""

    rows: int
    version: int
    committed: bool


def _replace(
    df: DataFrame,
    spec: TableSpec,
    settings: Settings,
    predicate: str,
    versions: dict[str, int],
    after_write: Callable[[str], None] | None,
) -> _Written:
    """replace_where, then track the table's version and call the after_write hook."""
    result = io.replace_where(df, spec, settings, predicate)
    written = _Written(result.rows, result.version, result.version != versions[spec.name])
    versions[spec.name] = result.version
    if after_write:
        after_write(spec.name)
    return written


def _run_counts(counts: dict[datetime, dict], bronze_rows: int, quarantined: int) -> dict:
    """A run's summed counts beside what its commits wrote, as reconcile checks them."""
    total = {
        k: sum(c[k] for c in counts.values())
        for k in (
            "input_lines",
            "bronze_rows",
            "quarantined_rows",
            "duplicates_in_drop",
            "duplicates_in_bronze",
        )
    }
    return {
        **total,
        "new_rows": total["bronze_rows"],
        "invalid_rows": total["quarantined_rows"],
        "bronze_rows": bronze_rows,
        "quarantined_rows": quarantined,
    }


def _utc(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
