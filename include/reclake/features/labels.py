"""Impression labels: each impression is labeled by the actions with the same (request_id,
item_id) inside its attribution window, written to silver/impressions_labeled once those
actions are final in bronze (see docs/labels.md for the exact semantics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reclake import contract, io, sqltext
from reclake.config import Settings
from reclake.hourlog import hours_with_docs, read_hour_docs, write_hour_doc
from reclake.ingest.log import ingested_hours
from reclake.tables import IMPRESSIONS_LABELED_DDL, table
from reclake.timeutil import HOUR, floor_hour, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# One record per impression hour labeled: the samples' finality check reads these, so an hour
# without impressions is as final as a busy one.
LABEL_LOG_DIR = "_reclake/label_log"
LABELS = ("played", "finished", "liked", "shared", "skipped")
# finished: the longest play reaches 90% of the item (integer maths: 10 * ms >= 9 * duration).
FINISHED_NUMERATOR, FINISHED_DENOMINATOR = 9, 10


class LabelsNotFinal(RuntimeError):
    """An impression hour was asked for before the actions that label it are final in bronze."""

    def __init__(self, hour: datetime, waits_for: datetime, final_through: datetime | None):
        self.hour, self.waits_for, self.final_through = hour, waits_for, final_through
        have = iso(final_through) if final_through else "none"
        super().__init__(
            f"labels of impression hour {iso(hour)} are not final: they wait for arrival hour "
            f"{iso(waits_for)} in bronze, which is complete through arrival hour {have}"
        )


@dataclass(frozen=True)
class LabelReport:
    """What one labeling run read and wrote; impressions == rows_written."""

    start: str
    end: str
    impressions: int  # impressions of [start, end) within allowed lateness: the rows labeled
    rows_written: int
    version: int
    positives: dict[str, int] = field(default_factory=dict)  # rows with each label true
    unknown_items: int = 0  # labeled rows whose item is not in dims/items (finished=false)
    actions_scanned: int = 0  # actions in [start, end + window] within allowed lateness
    actions_matched: int = 0  # ... attributed to at least one impression of [start, end)
    actions_unmatched: int = 0  # ... attributed to none (scanned = matched + unmatched)
    impressions_beyond_lateness: int = 0  # excluded, stay flagged in bronze
    actions_beyond_lateness: int = 0  # excluded, stay flagged in bronze
    final_through: str = ""  # bronze arrival hours were complete through this hour


def window(settings: Settings) -> timedelta:
    """The attribution window; an action at exactly impression time + window still counts."""
    return timedelta(minutes=settings.attribution_window_minutes)


def required_arrival_hour(hour: datetime, settings: Settings) -> datetime:
    """Last arrival hour bronze must hold before the labels of impression hour `hour` are final.

    The last window of the hour closes at hour + 1h + window; an action of that time is still
    within allowed lateness when it arrives up to allowed_lateness_hours after its own hour.
    """
    last_action_hour = floor_hour(parse_utc(hour) + HOUR + window(settings))
    return last_action_hour + timedelta(hours=settings.allowed_lateness_hours)


def _ingest_log_hours(settings: Settings) -> set[datetime]:
    """Arrival hours with an ingest run log (empty for a lake whose bronze came another way)."""
    return {floor_hour(parse_utc(h)) for h in ingested_hours(settings)}


def final_arrival_through(
    spark: SparkSession, settings: Settings, since: datetime
) -> datetime | None:
    """The latest arrival hour through which bronze is complete, counting from `since`.

    With an ingest run log it is authoritative: every arrival hour from `since` up to the
    answer has a run (a gap stops it). A lake without one (bronze written by other means)
    falls back to max(arrival_hour) of bronze rows dated from `since` on.
    """
    from pyspark.sql import functions as F

    since = floor_hour(since)
    logged = _ingest_log_hours(settings)
    if logged:
        through, hour = None, since
        while hour in logged:
            through, hour = hour, hour + HOUR
        return through
    bronze = io.read_table(spark, table("events"), settings)
    latest = bronze.where(F.col("event_date") >= F.lit(since.date())).agg(F.max("arrival_hour"))
    value = latest.collect()[0][0]
    return parse_utc(value) if value is not None else None


def check_final(spark: SparkSession, settings: Settings, start: datetime, end: datetime) -> str:
    """Raise LabelsNotFinal for the first hour of [start, end) that is not final yet."""
    through = final_arrival_through(spark, settings, start)
    for hour in hours_between(start, end):
        needed = required_arrival_hour(hour, settings)
        if through is None or through < needed:
            raise LabelsNotFinal(hour, needed, through)
    return iso(through) if through else ""


def bronze_slice(
    spark: SparkSession, settings: Settings, start: datetime, end: datetime
) -> DataFrame:
    """Bronze events with event_time in [start, end + window], pruned by event_date."""
    from pyspark.sql import functions as F

    last = end + window(settings)
    bronze = io.read_table(spark, table("events"), settings)
    return bronze.where(
        F.col("event_date").between(F.lit(start.date()), F.lit(last.date()))
        & (F.col("event_time") >= F.lit(start))
        & (F.col("event_time") <= F.lit(last))
    )


def impressions_of(events: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Impressions of hours [start, end) within allowed lateness."""
    from pyspark.sql import functions as F

    return events.where(
        (F.col("event_type") == "impression")
        & ~F.col("beyond_lateness")
        & (F.col("event_hour") >= F.lit(start))
        & (F.col("event_hour") < F.lit(end))
    )


def actions_of(events: DataFrame) -> DataFrame:
    """Actions (play, like, share, skip) within allowed lateness."""
    from pyspark.sql import functions as F

    return events.where(
        F.col("event_type").isin(*contract.ACTION_TYPES) & ~F.col("beyond_lateness")
    )


def attribute(impressions: DataFrame, actions: DataFrame, window_minutes: int) -> DataFrame:
    """(impression_id, action_id, action_type, watch_ms) for every action inside an
    impression's window [impression time, impression time + window] (both edges included)."""
    from pyspark.sql import functions as F

    imp = impressions.select(
        F.col("event_id").alias("impression_id"),
        F.col("request_id").alias("i_request_id"),
        F.col("item_id").alias("i_item_id"),
        F.col("event_time").alias("i_time"),
    )
    act = actions.select(
        F.col("event_id").alias("action_id"),
        F.col("event_type").alias("action_type"),
        "request_id",
        "item_id",
        "event_time",
        "watch_ms",
    )
    in_window = (
        (act.request_id == imp.i_request_id)
        & (act.item_id == imp.i_item_id)
        & (act.event_time >= imp.i_time)
        & (act.event_time <= imp.i_time + F.expr(sqltext.minutes(int(window_minutes))))
    )
    return imp.join(act, in_window).select("impression_id", "action_id", "action_type", "watch_ms")


def label(impressions: DataFrame, attributed: DataFrame, items: DataFrame) -> DataFrame:
    """One row per impression in impressions_labeled shape plus `_unknown_item`."""
    from pyspark.sql import functions as F

    def any_of(kind: str):
        return F.bool_or(F.col("action_type") == kind)

    is_play = F.col("action_type") == "play"
    per_impression = attributed.groupBy("impression_id").agg(
        any_of("play").alias("_played"),
        # Bronze holds each event once (deduped by event_id), so this sums distinct plays.
        F.sum(F.when(is_play, F.col("watch_ms"))).alias("_watch_ms"),
        F.max(F.when(is_play, F.col("watch_ms"))).alias("_longest_play_ms"),
        any_of("like").alias("_liked"),
        any_of("share").alias("_shared"),
        any_of("skip").alias("_skipped"),
    )
    durations = items.select(F.col("item_id").alias("_item_id"), "duration_ms")
    joined = impressions.join(
        per_impression, impressions.event_id == per_impression.impression_id, "left"
    ).join(durations, F.col("item_id") == F.col("_item_id"), "left")
    finished = (
        F.col("_longest_play_ms") * FINISHED_DENOMINATOR
        >= F.col("duration_ms") * FINISHED_NUMERATOR
    )
    return joined.select(
        "event_id",
        "request_id",
        "user_id",
        "item_id",
        "position",
        "event_time",
        "event_hour",
        F.coalesce("_played", F.lit(False)).alias("played"),
        F.coalesce("_watch_ms", F.lit(0)).cast("bigint").alias("watch_ms"),
        F.coalesce(finished, F.lit(False)).alias("finished"),
        F.coalesce("_liked", F.lit(False)).alias("liked"),
        F.coalesce("_shared", F.lit(False)).alias("shared"),
        F.coalesce("_skipped", F.lit(False)).alias("skipped"),
        "event_date",
        F.col("duration_ms").isNull().alias("_unknown_item"),
    )


def label_impressions(
    spark: SparkSession, settings: Settings, start: datetime | str, end: datetime | str
) -> LabelReport:
    """Label the impressions of hours [start, end) and replace them in impressions_labeled."""
    from pyspark.sql import functions as F

    start, end = parse_utc(start), parse_utc(end)
    if not list(hours_between(start, end)):
        raise ValueError(f"empty interval [{iso(start)}, {iso(end)})")
    final_through = check_final(spark, settings, start, end)
    items = io.read_table(spark, table("items"), settings)

    events = bronze_slice(spark, settings, start, end).cache()
    labeled = None
    try:
        impressions = impressions_of(events, start, end)
        actions = actions_of(events)
        attributed = attribute(impressions, actions, settings.attribution_window_minutes)
        labeled = label(impressions, attributed, items).cache()
        stats = labeled.agg(
            F.count(F.lit(1)).alias("impressions"),
            F.count_if("_unknown_item").alias("unknown_items"),
            *[F.count_if(name).alias(name) for name in LABELS],
        ).collect()[0]
        matched = attributed.select(F.col("action_id").alias("_matched")).distinct()
        action_stats = (
            actions.join(matched, actions.event_id == matched._matched, "left")
            .agg(
                F.count(F.lit(1)).alias("scanned"),
                F.count("_matched").alias("matched"),
            )
            .collect()[0]
        )
        late = events.where("beyond_lateness").agg(
            F.count_if(
                (F.col("event_type") == "impression")
                & (F.col("event_hour") >= F.lit(start))
                & (F.col("event_hour") < F.lit(end))
            ).alias("impressions"),
            F.count_if(F.col("event_type").isin(*contract.ACTION_TYPES)).alias("actions"),
        )
        late_stats = late.collect()[0]
        per_hour = dict(
            labeled.groupBy(F.expr("unix_seconds(event_hour)").alias("s")).count().collect()
        )

        spec = table("impressions_labeled")
        io.ensure_table(spark, spec, IMPRESSIONS_LABELED_DDL, settings)
        hours = sqltext.hour_ranges([(start, end)], "event_hour", "event_date")
        result = io.replace_where(labeled.drop("_unknown_item"), spec, settings, hours)
    finally:
        events.unpersist()
        if labeled is not None:
            labeled.unpersist()
    for hour in hours_between(start, end):
        doc = {
            "impression_hour": iso(hour),
            "impressions": per_hour.get(int(hour.timestamp()), 0),
            "version": result.version,
            "run": [iso(start), iso(end)],
            "final_through": final_through,
        }
        write_hour_doc(settings, LABEL_LOG_DIR, hour, doc)
    return LabelReport(
        start=iso(start),
        end=iso(end),
        impressions=stats["impressions"],
        rows_written=result.rows,
        version=result.version,
        positives={name: stats[name] for name in LABELS},
        unknown_items=stats["unknown_items"],
        actions_scanned=action_stats["scanned"],
        actions_matched=action_stats["matched"],
        actions_unmatched=action_stats["scanned"] - action_stats["matched"],
        impressions_beyond_lateness=late_stats["impressions"],
        actions_beyond_lateness=late_stats["actions"],
        final_through=final_through,
    )


def labeled_hours(settings: Settings, start: datetime, end: datetime) -> set[datetime]:
    """Impression hours in [start, end) that label_impressions has written, rows or none."""
    return hours_with_docs(settings, LABEL_LOG_DIR, start, end)


def logged_impressions(settings: Settings, start: datetime, end: datetime) -> int | None:
    """Impressions the label log records for hours [start, end); None unless every hour has
    a record (lakes labeled before the log existed, or hours not labeled yet)."""
    docs = read_hour_docs(settings, LABEL_LOG_DIR, start, end)
    if len(docs) != len(list(hours_between(start, end))):
        return None
    return sum(int(d["impressions"]) for d in docs)
