"""Orchestration and I/O of the ingest: one arrival hour's drop -> bronze + quarantine."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from reclake import io, lakefs
from reclake.config import Settings
from reclake.ingest import rules, transform
from reclake.ingest.layout import (
    IngestError,
    check_drop_files,
    drop_relative,
    drop_uri,
    line_offsets,
    reconcile,
)
from reclake.ingest.log import HourReport, IngestReport, save_ingest_log
from reclake.tables import BRONZE_EVENTS_DDL, QUARANTINE_EVENTS_DDL, table
from reclake.timeutil import hours_between, iso, parse_utc

LINE_SCHEMA = "value STRING, source_file STRING, block_start BIGINT, row_id BIGINT"
# Counts observed while writing bronze, by the fate they count.
FATE_METRICS = {
    "new_rows": transform.NEW,
    "duplicates_in_drop": transform.DUP_IN_DROP,
    "duplicates_in_bronze": transform.DUP_IN_BRONZE,
}


def ingest_events(
    spark: SparkSession,
    settings: Settings,
    start: datetime | str,
    end: datetime | str,
    after_write: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest every arrival hour in [start, end), in order; fails on the first bad hour.

    `after_write(table_name)` is called after each table commit (progress hooks, crash tests).
    """
    s, e = parse_utc(start), parse_utc(end)
    hours = [ingest_hour(spark, settings, h, after_write) for h in hours_between(s, e)]
    return IngestReport(iso(s), iso(e), hours)


def read_drop(spark: SparkSession, settings: Settings, arrival_hour: datetime) -> DataFrame:
    """The drop's lines with their file (relative to the landing root), the file block a task
    read and a row id that increases by one per line within a block."""
    folder = drop_uri(settings, arrival_hour)
    if not lakefs.exists(folder):
        raise IngestError(f"no drop for arrival hour {iso(arrival_hour)}: {folder} is missing")
    files = lakefs.list_files(folder)
    names = check_drop_files(folder, [f.rsplit("/", 1)[1] for f in files])
    if not names:
        return spark.createDataFrame([], LINE_SCHEMA)
    return spark.read.text([f"{folder}/{n}" for n in names]).select(
        "value", *line_position(arrival_hour)
    )


def line_position(arrival_hour: datetime) -> list[Column]:
    """Where a line of the drop comes from, for any file reader of it: source_file (relative
    to the landing root), the file block a task read and a row id increasing within it."""
    prefix = drop_relative(arrival_hour) + "/"
    return [
        F.concat(F.lit(prefix), F.col("_metadata.file_name")).alias("source_file"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
    ]


def ingest_hour(
    spark: SparkSession,
    settings: Settings,
    arrival_hour: datetime,
    after_write: Callable[[str], None] | None = None,
) -> HourReport:
    """Ingest one arrival hour idempotently: replace its rows in bronze and quarantine."""
    began = time.monotonic()
    hour = parse_utc(arrival_hour)
    bronze_spec, quarantine_spec = table("events"), table("quarantine_events")
    io.ensure_table(spark, bronze_spec, BRONZE_EVENTS_DDL, settings)
    io.ensure_table(spark, quarantine_spec, QUARANTINE_EVENTS_DDL, settings)

    lines = read_drop(spark, settings, hour)
    checked = rules.validate(lines, hour, settings.max_future_skew_minutes)
    checked = transform.with_lateness(checked, hour, settings.allowed_lateness_hours)
    # Only quarantine needs the raw text: do not hold it in memory for valid rows.
    checked = checked.withColumn("value", F.when(F.col("reason").isNotNull(), F.col("value")))
    # Parse the drop once; every count and both writes read this.
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        blocks = (
            checked.groupBy("source_file", "block_start")
            .agg(
                F.min("row_id").alias("first_row_id"),
                F.count(F.lit(1)).alias("lines"),
                F.collect_set(F.when(F.col("reason").isNull(), F.col("event_date"))).alias("dates"),
            )
            .collect()
        )
        input_lines = sum(b["lines"] for b in blocks)
        dates = sorted({d for b in blocks for d in b["dates"]})
        offsets = line_offsets(
            [(b["source_file"], b["block_start"], b["first_row_id"], b["lines"]) for b in blocks]
        )

        valid = checked.where(F.col("reason").isNull())
        fated = transform.assign_fates(valid, ids_in_other_hours(spark, settings, hour, dates))
        fates = Observation("ingest_fates")
        fated = fated.observe(
            fates,
            *[F.count_if(F.col("fate") == f).alias(name) for name, f in FATE_METRICS.items()],
            F.count_if((F.col("fate") == transform.NEW) & F.col("beyond_lateness")).alias(
                "beyond_lateness"
            ),
        )
        predicate = f"arrival_hour = timestamp'{iso(hour)}'"
        bronze = io.replace_where(transform.bronze_rows(fated), bronze_spec, settings, predicate)
        if after_write:
            after_write(bronze_spec.name)

        invalid = checked.where(F.col("reason").isNotNull())
        faults = Observation("ingest_faults")
        invalid = invalid.observe(
            faults,
            F.count(F.lit(1)).alias("invalid_rows"),
            *[F.count_if(F.col("reason") == r).alias(r) for r in rules.REASONS],
        )
        offsets_df = spark.createDataFrame(
            [(f, s, o) for (f, s), o in offsets.items()],
            "source_file STRING, block_start BIGINT, offset BIGINT",
        )
        quarantine = io.replace_where(
            transform.quarantine_rows(invalid, offsets_df, hour),
            quarantine_spec,
            settings,
            f"arrival_date = date'{hour.date().isoformat()}' AND {predicate}",
        )
        if after_write:
            after_write(quarantine_spec.name)
    finally:
        checked.unpersist()

    if input_lines:
        fate_counts, fault_counts = _metrics(fates), _metrics(faults)
    else:  # Spark prunes the plan of an empty drop, so its observers never report
        fate_counts = dict.fromkeys((*FATE_METRICS, "beyond_lateness"), 0)
        fault_counts = dict.fromkeys(("invalid_rows", *rules.REASONS), 0)
    counts = {
        "input_lines": input_lines,
        "bronze_rows": bronze.rows,
        "quarantined_rows": quarantine.rows,
        "invalid_rows": fault_counts.pop("invalid_rows"),
        **fate_counts,
    }
    problems = reconcile(counts)
    if problems:
        raise IngestError(f"counts of arrival hour {iso(hour)} do not reconcile: {problems}")
    report = HourReport(
        arrival_hour=iso(hour),
        input_files=len({b["source_file"] for b in blocks}),
        input_lines=input_lines,
        bronze_rows=bronze.rows,
        quarantined_rows=quarantine.rows,
        duplicates_in_drop=counts["duplicates_in_drop"],
        duplicates_in_bronze=counts["duplicates_in_bronze"],
        beyond_lateness=counts["beyond_lateness"],
        bronze_version=bronze.version,
        quarantine_version=quarantine.version,
        duration_s=round(time.monotonic() - began, 3),
        quarantine_reasons={r: n for r, n in fault_counts.items() if n},
    )
    save_ingest_log(settings, report)
    return report


def ids_in_other_hours(
    spark: SparkSession, settings: Settings, hour: datetime, dates: list
) -> DataFrame:
    """event_ids already in bronze from other arrival hours, only in the dates the drop touches."""
    bronze = io.read_table(spark, table("events"), settings)
    if not dates:
        return bronze.select("event_id").limit(0)
    return bronze.where(
        F.col("event_date").isin(*dates) & (F.col("arrival_hour") != transform.hour_literal(hour))
    ).select("event_id")


def _metrics(observation: Observation) -> dict[str, int]:
    # An empty input yields null sums; those count as zero.
    return {k: int(v or 0) for k, v in observation.get.items()}
