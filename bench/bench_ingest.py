"""Benchmark ingest_events against a bare spark.read.json(...).write.parquet(...) of the same
generated drop (1M events per arrival hour by default), all on local[2]; three parts:

`paths`: hour 0 warms every path up (JVM JIT, Delta table creation) untimed; hours 1..--repeat
are each timed once per path: a steady-state ingest that also dedupes against the earlier hours
in bronze, then the baseline and the floors on the same drop. Medians are printed.
Two floors are timed beside them on the same hour: the parts of the ingest that no validation
design can remove, each with a JSON read that validates nothing (Spark's typed reader):
- `floor_write`: read -> bronze-shaped rows -> Delta table partitioned by event date;
- `floor_dedupe`: the same plus the ingest's own dedupe (`transform.assign_fates` against
  `run.bronze_copies`: first copy in the drop, and against bronze's other arrival hours).
`floor_ratio` = baseline / floor_dedupe: the ratio an ingest with this dedupe would reach
if validation, quarantine and bookkeeping cost nothing.

`interval`: hours 0..--repeat ingested on two fresh lakes, hour by hour and in one interval
run; prints both times and `interval_speedup` = hour by hour / interval.

`day`: a whole day ingested hour by hour on a fresh lake (tables created untimed); prints
every hour's seconds and `day_ratio` = hour 24 / hour 1 (target <= 1.2: the dedupe against
bronze must not grow with the hours of the day already in it).

    make bench-ingest                       # or: .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --events 200000 --repeat 1 --parts paths --keep

Prints figures only (no assertions on time); the targets are ratio >= 0.5, day_ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

FIRST_HOUR = datetime(2026, 11, 20, tzinfo=UTC)
PARTS = ("paths", "interval", "day")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events per arrival hour")
    p.add_argument("--repeat", type=int, default=3, help="timed hours (medians are printed)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to time")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate the hours, time the chosen parts, print one JSON line of figures."""
    from reclake.config import Settings
    from reclake.generator import GeneratorConfig, generate
    from reclake.spark import get_spark
    from reclake.timeutil import HOUR, iso

    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="reclake-bench-ingest-"))
    settings = Settings(
        lake_root=(root / "lake").as_uri(),
        landing_root=(root / "landing").as_uri(),  # shared by the fresh lakes of each part
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        spark_jvm_options="",  # full JIT: a 1M-event hour is a long-running job
        spark_codegen=True,
    )
    # hours[-1] ends the timed interval; the day part needs 24 drops.
    hours = [iso(FIRST_HOUR + i * HOUR) for i in range(args.repeat + 2)]
    drops = max(24 if "day" in args.parts else 0, len(hours) - 1)
    try:
        t = time.perf_counter()
        config = GeneratorConfig(events_per_hour=args.events)
        report = generate(settings, FIRST_HOUR, FIRST_HOUR + drops * HOUR, config)
        spark = get_spark("bench-ingest", settings)
        figures = {
            "events_per_hour": args.events,
            "generate_s": round(time.perf_counter() - t, 1),
            "files_per_hour": report.hours[0].counts.files,
        }
        if "paths" in args.parts:
            figures.update(time_paths(spark, settings, root, hours))
        else:  # the other parts time warm runs too
            warm_up(spark, fresh_lake(settings, root, "warm-up"), hours[0])
        if "interval" in args.parts:
            figures.update(time_interval(spark, settings, root, hours[0], hours[-1]))
        if "day" in args.parts:
            figures.update(time_day(spark, settings, root))
        print(json.dumps(figures))
        spark.stop()
    finally:
        if args.keep:
            print(f"lake kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def fresh_lake(settings, root: Path, name: str):
    """Settings of an empty lake of its own over the benchmark's landing drops."""
    return dataclasses.replace(settings, lake_root=(root / name).as_uri())


def timed(run, *run_args) -> float:
    """Seconds one call takes."""
    t = time.perf_counter()
    run(*run_args)
    return time.perf_counter() - t


def warm_up(spark, settings, hour: str) -> None:
    """Ingest one hour untimed (JIT, Delta table creation)."""
    from reclake.ingest import ingest_events
    from reclake.timeutil import HOUR, parse_utc

    ingest_events(spark, settings, hour, parse_utc(hour) + HOUR)


def time_paths(spark, settings, root: Path, hours: list[str]) -> dict:
    """The ingest, the baseline and the floors, side by side on each timed hour."""
    from reclake.ingest import ingest_events
    from reclake.ingest.layout import drop_uri
    from reclake.timeutil import parse_utc

    def baseline(hour: str, out: str) -> None:
        drop = drop_uri(settings, parse_utc(hour))
        spark.read.json(drop).write.mode("overwrite").parquet((root / out).as_uri())

    # Hour 0 warms every path up (JIT, table creation); each later hour is timed once per
    # path, the paths side by side, so a load swing hits all of them alike.
    results, ingest = [], None
    for i, hour in enumerate(hours[:-1]):
        t = time.perf_counter()
        ingest = ingest_events(spark, settings, hour, hours[i + 1])
        out = (root / f"floor-{i}").as_uri()
        run = {
            "lines": ingest.totals()["input_lines"],
            "ingest": time.perf_counter() - t,
            "baseline": timed(baseline, hour, f"baseline-{i}"),
            "floor_write": timed(floor, spark, settings, hour, out + "-write", False),
            "floor_dedupe": timed(floor, spark, settings, hour, out + "-dedupe", True),
        }
        if i:
            results.append(run)

    def rate(path: str) -> int:
        return round(median(r["lines"] / r[path] for r in results))

    def ratio(path: str) -> float:
        return round(median(r["baseline"] / r[path] for r in results), 2)

    paths = ("ingest", "baseline", "floor_write", "floor_dedupe")
    return {
        "lines": [r["lines"] for r in results],
        **{f"{p}_s": [round(r[p], 1) for r in results] for p in paths},
        **{f"{p}_events_per_s": rate(p) for p in paths},
        "ratio": ratio("ingest"),
        "floor_ratio": ratio("floor_dedupe"),
        "last_hour": ingest.totals(),
    }


def time_interval(spark, settings, root: Path, start: str, end: str) -> dict:
    """The same hours on two fresh lakes: hour by hour, then in one interval run."""
    from reclake.ingest import ingest_events
    from reclake.timeutil import HOUR, hours_between

    hourly = fresh_lake(settings, root, "hour-by-hour")
    seconds = [timed(ingest_events, spark, hourly, h, h + HOUR) for h in hours_between(start, end)]
    t = time.perf_counter()
    report = ingest_events(spark, fresh_lake(settings, root, "interval"), start, end)
    interval_s = time.perf_counter() - t
    return {
        "interval_hours": len(seconds),
        "hour_by_hour_s": round(sum(seconds), 1),
        "interval_s": round(interval_s, 1),
        "interval_speedup": round(sum(seconds) / interval_s, 2),
        "interval_totals": report.totals(),
    }


def time_day(spark, settings, root: Path) -> dict:
    """A day hour by hour on a fresh lake: does the 24th hour cost what the first does?"""
    from reclake import io
    from reclake.ingest import ingest_events
    from reclake.tables import BRONZE_EVENTS_DDL, QUARANTINE_EVENTS_DDL, table
    from reclake.timeutil import HOUR

    day = fresh_lake(settings, root, "day")
    io.ensure_table(spark, table("events"), BRONZE_EVENTS_DDL, day)
    io.ensure_table(spark, table("quarantine_events"), QUARANTINE_EVENTS_DDL, day)
    hours = [FIRST_HOUR + i * HOUR for i in range(24)]
    seconds = [timed(ingest_events, spark, day, h, h + HOUR) for h in hours]
    return {
        "day_hour_s": [round(x, 1) for x in seconds],
        "day_first_hour_s": round(seconds[0], 1),
        "day_24th_hour_s": round(seconds[-1], 1),
        "day_ratio": round(seconds[-1] / seconds[0], 2),
    }


def floor(spark, settings, hour: str, out: str, dedupe: bool) -> int:
    """Write the hour's rows that Spark's typed JSON reader accepts as bronze rows to a fresh
    Delta table (with the ingest's dedupe when asked); returns the rows written."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from reclake.contract import EVENT_FIELDS
    from reclake.ingest import transform
    from reclake.ingest.rules import SQL_TYPE, future_horizon
    from reclake.ingest.run import bronze_copies, drop_files, drop_reader, line_position
    from reclake.timeutil import HOUR, parse_utc

    arrival = parse_utc(hour)
    typed = ", ".join(f"{f.name} {SQL_TYPE[f.json_type]}" for f in EVENT_FIELDS)
    rows = (
        drop_reader(spark, settings, typed)
        .json(drop_files(settings, arrival))
        .select(*[f.name for f in EVENT_FIELDS], *line_position())
        .withColumn("event_time", F.col("event_time").try_cast("timestamp"))
        # The future-timestamp rule, so the table gets the bronze's partitions, not hundreds.
        .where(
            F.col("event_time")
            <= future_horizon(F.col("arrival_hour"), settings.max_future_skew_minutes)
        )
    )
    rows = transform.with_lateness(rows, settings.allowed_lateness_hours)
    if dedupe:
        # As the ingest does: parse once, count lines per event hour, then settle the copies
        # against bronze's rows of those event hours and drop the duplicates.
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        by_hour = rows.groupBy(F.unix_seconds("event_hour").alias("s")).count().collect()
        lines_by_event_hour = {_utc(r["s"]): r["count"] for r in by_hour}
        in_bronze = bronze_copies(
            spark, settings, arrival, arrival + HOUR, rows, lines_by_event_hour
        )
        fated = transform.assign_fates(rows.select(*transform.COPY_COLUMNS), in_bronze)
        bronze = transform.bronze_rows(rows, transform.duplicates(fated))
    else:
        bronze = transform.bronze_columns(rows)
    bronze.write.format("delta").mode("overwrite").partitionBy("event_date").save(out)
    rows.unpersist()
    return spark.read.format("delta").load(out).count()


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


if __name__ == "__main__":
    sys.exit(main())
