"""Spark transforms of the ingest: validated lines -> bronze rows and quarantine rows."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Fate of a valid row: written, or a copy of an event_id kept elsewhere.
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
# Order of copies of an event_id within a drop: equals (source_file, line_number).
COPY_ORDER = ("source_file", "block_start", "row_id")


def hour_literal(arrival_hour: datetime) -> Column:
    """The arrival hour as a TIMESTAMP literal column."""
    return F.lit(arrival_hour).cast("timestamp")


def with_lateness(
    valid: DataFrame, arrival_hour: datetime, allowed_lateness_hours: int
) -> DataFrame:
    """Add event_hour, arrival_hour, late_hours, beyond_lateness and event_date.

    late_hours counts whole hours from the event's hour to the arrival hour; an event inside
    or after its arrival hour (clock skew) is 0 hours late.
    """
    event_hour = F.date_trunc("hour", F.col("event_time"))
    arrival = hour_literal(arrival_hour)
    late = F.greatest(
        F.lit(0), F.floor((F.unix_seconds(arrival) - F.unix_seconds(event_hour)) / 3600)
    ).cast("int")
    return valid.select(
        "*",
        event_hour.alias("event_hour"),
        arrival.alias("arrival_hour"),
        late.alias("late_hours"),
        (late > allowed_lateness_hours).alias("beyond_lateness"),
        F.to_date("event_time").alias("event_date"),
    )


def assign_fates(valid: DataFrame, ids_in_bronze: DataFrame) -> DataFrame:
    """Add `fate`: the first copy of each event_id in the drop is new, unless bronze already
    holds that event_id from another arrival hour (that copy wins)."""
    copy_rank = F.row_number().over(
        Window.partitionBy("event_id").orderBy(*[F.col(c) for c in COPY_ORDER])
    )
    known = ids_in_bronze.select("event_id").distinct().withColumn("_in_bronze", F.lit(True))
    fate = (
        F.when(F.col("_in_bronze"), F.lit(DUP_IN_BRONZE))
        .when(copy_rank > 1, F.lit(DUP_IN_DROP))
        .otherwise(F.lit(NEW))
    )
    return valid.join(known, "event_id", "left").withColumn("fate", fate).drop("_in_bronze")


def bronze_rows(fated: DataFrame) -> DataFrame:
    """The rows to write to bronze, in the table's column order and types."""
    columns = [
        F.col(c).cast("int").alias(c) if c == "position" else F.col(c) for c in BRONZE_COLUMNS
    ]
    return fated.where(F.col("fate") == NEW).select(*columns)


def quarantine_rows(invalid: DataFrame, offsets: DataFrame, arrival_hour: datetime) -> DataFrame:
    """The quarantine rows: raw line, true 1-based line number, reason and detail."""
    arrival = hour_literal(arrival_hour)
    return invalid.join(F.broadcast(offsets), ["source_file", "block_start"]).select(
        F.col("value").alias("raw_line"),
        "source_file",
        (F.col("row_id") - F.col("offset") + 1).alias("line_number"),
        arrival.alias("arrival_hour"),
        "reason",
        "detail",
        F.to_date(arrival).alias("arrival_date"),
    )
