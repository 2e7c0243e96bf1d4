"""Spark transforms of the ingest: validated lines -> bronze rows and quarantine rows.

Every transform works on the lines of any number of arrival hours at once: each line carries
its own `arrival_hour`.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Fate of a valid line: written, or a copy of an event kept elsewhere.
NEW = "new"
DUP_IN_DROP = "duplicate_in_drop"
DUP_IN_BRONZE = "duplicate_in_bronze"

BRONZE_COLUMNS = (
    "event_id",
    "event_type",
    "event_time",
    "user_id",
    "item_id",
    "request_id",
    "position",
    "watch_ms",
    "event_hour",
    "arrival_hour",
    "late_hours",
    "beyond_lateness",
    "source_file",
    "event_date",
)
QUARANTINE_COLUMNS = (
    "raw_line",
    "source_file",
    "line_number",
    "arrival_hour",
    "reason",
    "detail",
    "arrival_date",
)
# Order of copies of an event_id within one drop: equals (source_file, line_number).
COPY_ORDER = ("source_file", "block_start", "row_id")
# What the dedupe reads of a valid line: the full rows are never shuffled to settle copies.
COPY_COLUMNS = ("event_id", "event_hour", "arrival_hour", *COPY_ORDER, "beyond_lateness")
# What the dedupe reads of a bronze row.
BRONZE_KEY = ("event_id", "event_hour")


def with_lateness(lines: DataFrame, allowed_lateness_hours: int) -> DataFrame:
    """Add event_hour, late_hours, beyond_lateness and event_date from each line's own
    arrival_hour.

    late_hours counts whole hours from the event's hour to the arrival hour; an event inside
    or after its arrival hour (clock skew) is 0 hours late.
    """
    event_hour = F.date_trunc("hour", F.col("event_time"))
    late = F.greatest(
        F.lit(0), F.floor((F.unix_seconds("arrival_hour") - F.unix_seconds(event_hour)) / 3600)
    ).cast("int")
    return lines.select(
        "*",
        event_hour.alias("event_hour"),
        late.alias("late_hours"),
        (late > allowed_lateness_hours).alias("beyond_lateness"),
        F.to_date("event_time").alias("event_date"),
    )


def assign_fates(valid: DataFrame, in_bronze: DataFrame) -> DataFrame:
    """Add `fate` to the valid lines of a run's arrival hours.

    Within one arrival hour's drop only the first line of an event_id (COPY_ORDER) can be
    kept; the others are duplicates_in_drop. Across arrival hours a copy is a line with the
    same event_id and event_hour: of the copies that are first in their drop, the earliest
    arrival hour's is kept, and every copy in a later hour is a duplicate_in_bronze, as are
    all copies of an (event_id, event_hour) that `in_bronze` (bronze rows of arrival hours
    outside the run) already holds. That is what ingesting the hours one at a time in
    ascending order gives.
    """
    held = in_bronze.groupBy("event_id").agg(F.collect_set("event_hour").alias("_bronze_hours"))
    in_drop = Window.partitionBy("event_id", "arrival_hour").orderBy(*COPY_ORDER)
    copies = Window.partitionBy(*BRONZE_KEY)
    in_bronze_hours = F.array_contains("_bronze_hours", F.col("event_hour"))
    kept_elsewhere = F.coalesce(in_bronze_hours, F.lit(False))
    # One shuffle by event_id serves the join and both windows (each clusters by event_id).
    ranked = (
        valid.repartition("event_id")
        .join(held, "event_id", "left")
        .withColumn("_drop_rank", F.row_number().over(in_drop))
    )
    first_hour = F.min(F.when(F.col("_drop_rank") == 1, F.col("arrival_hour"))).over(copies)
    later_hour = F.coalesce(F.col("arrival_hour") > first_hour, F.lit(False))
    fate = (
        F.when(kept_elsewhere | later_hour, F.lit(DUP_IN_BRONZE))
        .when(F.col("_drop_rank") > 1, F.lit(DUP_IN_DROP))
        .otherwise(F.lit(NEW))
    )
    return ranked.withColumn("fate", fate).drop("_bronze_hours", "_drop_rank")


def duplicates(fated: DataFrame) -> DataFrame:
    """The lines not to write (row_id), with what they count as."""
    return fated.where(F.col("fate") != NEW).select(
        "row_id", "arrival_hour", "fate", "beyond_lateness"
    )


def bronze_columns(rows: DataFrame) -> DataFrame:
    """Rows in the bronze table's column order and types, sorted by event hour inside each
    event date so a file's pages hold few event hours (lookups by event_hour skip pages)."""
    columns = [
        F.col(c).cast("int").alias(c) if c == "position" else F.col(c) for c in BRONZE_COLUMNS
    ]
    return rows.select(*columns).sortWithinPartitions("event_date", "event_hour")


def bronze_rows(valid: DataFrame, duplicate_lines: DataFrame) -> DataFrame:
    """The rows to write to bronze: the valid lines that are not duplicates."""
    kept = valid.join(duplicate_lines.select("row_id"), "row_id", "left_anti")
    return bronze_columns(kept)


def quarantine_rows(invalid: DataFrame, offsets: DataFrame) -> DataFrame:
    """The quarantine rows: raw line, true 1-based line number, reason and detail."""
    return invalid.join(F.broadcast(offsets), ["source_file", "block_start"]).select(
        # Invalid UTF-8 is kept readable (bad bytes as U+FFFD): Parquet strings must be UTF-8.
        F.make_valid_utf8("value").alias("raw_line"),
        "source_file",
        (F.col("row_id") - F.col("offset") + 1).alias("line_number"),
        "arrival_hour",
        "reason",
        "detail",
        F.to_date("arrival_hour").alias("arrival_date"),
    )


def hour_literal(hour: datetime) -> Column:
    """An hour (aware datetime) as a TIMESTAMP literal column."""
    return F.lit(hour).cast("timestamp")
