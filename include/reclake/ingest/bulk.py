"""Bulk import of event history in any folder layout: every record is placed in the arrival
hour of its own event time and goes through the ingest's validation, dedupe, commits and logs
(reclake.ingest.run), one pass and two commits per chunk of those hours."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from pyarrow import fs as pafs
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reclake import lakefs
from reclake.config import Settings
from reclake.ingest import rules, run, transform
from reclake.ingest.layout import IngestError, block_offsets, readable_files
from reclake.ingest.log import IMPORT_SOURCE_PREFIX, IngestReport
from reclake.timeutil import HOUR, chunks, floor_hour, iso

# JSON lines (gzipped or not: Spark's text reader decompresses by the .gz suffix) and Parquet.
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)


@dataclass(frozen=True)
class ImportFile:
    """One file of an import: its path relative to the import's root (the source_file of its
    rows), its URI as Spark reads it, and whether it is Parquet (else JSON lines)."""

    relative: str
    uri: str
    parquet: bool


def import_events(
    spark: SparkSession,
    settings: Settings,
    path: str,
    chunk_hours: int | None = None,
    after_write: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Import the event files under `path` (a folder, read recursively, or one file): each line
    goes to the arrival hour of its event time, and every hour from the first to the last is
    ingested and logged, one pass and two commits per chunk of `chunk_hours`.

    `now` (default: the clock) sets the import's horizon: no line is placed after its hour,
    and events after its end + max_future_skew_minutes are quarantined as future_timestamp.
    """
    began = time.monotonic()
    root = root_uri(path)
    files = import_files(root)
    now_hour = floor_hour(now or datetime.now(UTC))
    source = f"{IMPORT_SOURCE_PREFIX}{root}"
    versions = run.prepare_tables(spark, settings)
    # The files are parsed and validated once for every chunk (memory, spilling to disk).
    parsed = run.validated(read_lines(spark, files, now_hour), settings)
    parsed = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with readable_files():
            first = first_hour(parsed)
            if first is None:
                return _nothing_placed(parsed, root, now_hour)
            checked = transform.with_lateness(
                placed(parsed, first, now_hour), settings.allowed_lateness_hours
            )
            groups = run.collect_line_groups(checked)
            # Offsets of whole files: a chunk holds only some lines of a file.
            offsets = block_offsets(groups)
            end = max(g.arrival_hour for g in groups) + HOUR
            passes, hours = [], []
            for lo, hi in chunks(first, end, chunk_hours or settings.ingest_chunk_hours):
                lines = run.CheckedLines(
                    checked.where(in_hours(lo, hi)),
                    [g for g in groups if lo <= g.arrival_hour < hi],
                    offsets,
                )
                chunk, reports = run.commit_chunk(
                    spark, settings, lo, hi, lines, versions, after_write, began, source
                )
                began = time.monotonic()
                passes.append(chunk)
                hours.extend(reports)
    finally:
        parsed.unpersist()
    return IngestReport(iso(first), iso(end), hours, passes)


def root_uri(path: str) -> str:
    """The import root as Spark and the lake's filesystems both read it: a URI as given, a
    local path made absolute (a file:// URI would need percent-encoding for pyarrow and none
    for Spark)."""
    if "://" in path:
        return path.rstrip("/")
    return os.path.abspath(path)


def import_files(root: str) -> list[ImportFile]:
    """The files under the root (or the root itself when it is a file), sorted by relative
    path; a missing root, no file, or any file of another kind is an IngestError."""
    filesystem, base = lakefs.resolve(root)
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise IngestError(f"nothing to import: {root} does not exist")
    if info.type == pafs.FileType.File:
        return classify([(info.base_name, root)], root)
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    names = sorted(f.path[len(base) :].lstrip("/") for f in found if f.type == pafs.FileType.File)
    if not names:
        raise IngestError(f"nothing to import: no file under {root}")
    return classify([(n, f"{root}/{n}") for n in names], root)


def classify(files: Iterable[tuple[str, str]], root: str) -> list[ImportFile]:
    """ImportFile of each (relative path, URI) by suffix; any other file, hidden ones
    included, is an error listing them all, so nothing is skipped silently."""
    out, unsupported = [], []
    for relative, uri in files:
        if relative.endswith(JSON_SUFFIXES + PARQUET_SUFFIXES):
            out.append(ImportFile(relative, uri, relative.endswith(PARQUET_SUFFIXES)))
        else:
            unsupported.append(relative)
    if unsupported:
        raise IngestError(
            f"unsupported files under {root}: {', '.join(unsupported)} "
            f"(expected {', '.join(JSON_SUFFIXES + PARQUET_SUFFIXES)})"
        )
    return out


def read_lines(spark: SparkSession, files: list[ImportFile], hour: datetime) -> DataFrame:
    """Every line of the files in one scan per format, as the ingest's lines (run.LINE_SCHEMA):
    a Parquet row becomes the JSON object of its columns (timestamps as ISO-8601 UTC with a
    Z), so one validation serves both formats. `hour` is every line's provisional arrival
    hour, the validation horizon (see placed)."""
    parts = []
    json_uris = [f.uri for f in files if not f.parquet]
    parquet_uris = [f.uri for f in files if f.parquet]
    if json_uris:
        parts.append(spark.read.schema("value STRING").text(json_uris).select("value", *_origin()))
    if parquet_uris:
        table = spark.read.option("mergeSchema", "true").parquet(*parquet_uris)
        parts.append(table.select(F.to_json(F.struct("*")).alias("value"), *_origin()))
    lines = reduce(DataFrame.unionByName, parts)
    # Every file's URI is the folder's URI followed by its relative path.
    folder = lakefs.resolve(files[0].uri[: -len(files[0].relative)])[1]
    # Row ids after the union: its partitions are numbered across both scans, so ids stay
    # unique and consecutive within each file block, as the line numbers need.
    return lines.select(
        "value",
        _relative(F.col("file_path"), folder).alias("source_file"),
        transform.hour_literal(hour).alias("arrival_hour"),
        "block_start",
        F.monotonically_increasing_id().alias("row_id"),
    )


def _origin() -> list[Column]:
    return [
        F.col("_metadata.file_path").alias("file_path"),
        F.col("_metadata.file_block_start").alias("block_start"),
    ]


def _relative(file_path: Column, folder: str) -> Column:
    """A scanned file's path relative to `folder` (the path of the import's folder, or of a
    single file's parent). Spark spells file paths URL-encoded; '+' is escaped first because
    url_decode reads it as a space."""
    decoded = F.url_decode(F.regexp_replace(file_path, r"\+", "%2B"))
    folder = folder.rstrip("/") + "/"
    start = F.instr(decoded, folder) + len(folder)
    return F.substring(decoded, start, 1 << 30)


def first_hour(parsed: DataFrame) -> datetime | None:
    """The import's first hour: the earliest hour a line with a placeable event time falls in
    (None when no line has one). This also fills the cache of the parsed lines."""
    row = parsed.agg(F.min(F.when(_placeable(), F.col("event_time")))).first()
    return None if row[0] is None else floor_hour(row[0])


def _placeable() -> Column:
    # event_time is null unless the line holds a contract time (rules.validate).
    future = F.coalesce(F.col("reason") == rules.FUTURE_TIMESTAMP, F.lit(False))
    return F.col("event_time").isNotNull() & ~future


def placed(parsed: DataFrame, first: datetime, now_hour: datetime) -> DataFrame:
    """Set each line's arrival hour: the hour of its event time (at most `now_hour`, the
    import's own hour); lines without a contract event time, and future ones, go to the
    import's `first` hour."""
    own_hour = F.least(F.date_trunc("hour", "event_time"), transform.hour_literal(now_hour))
    arrival = F.when(_placeable(), own_hour).otherwise(transform.hour_literal(first))
    return parsed.withColumn("arrival_hour", arrival)


def in_hours(start: datetime, end: datetime) -> Column:
    """Lines whose arrival hour is in [start, end)."""
    hour = F.col("arrival_hour")
    return (hour >= transform.hour_literal(start)) & (hour < transform.hour_literal(end))


def _nothing_placed(parsed: DataFrame, root: str, now_hour: datetime) -> IngestReport:
    """An import with no line at all does nothing; lines none of which can be placed in an
    hour are an error (there is no hour to ingest them into)."""
    lines = parsed.count()
    if lines:
        raise IngestError(
            f"none of the {lines} lines under {root} has a valid event_time to place it by"
        )
    return IngestReport(iso(now_hour), iso(now_hour), [], [])


def import_summary(
    spark: SparkSession, settings: Settings, path: str, chunk_hours: int | None = None
) -> dict:
    """Run import_events; its one-line JSON summary: the report's totals and the import root."""
    report = import_events(spark, settings, path, chunk_hours)
    return {**report.totals(), "path": root_uri(path)}
