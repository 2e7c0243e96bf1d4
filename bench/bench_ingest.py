"""Benchmark ingest_events against a bare spark.read.json(...).write.parquet(...) of the same
generated drop (1M events per arrival hour by default), both on local[2].

Hour 0 warms every path up (JVM JIT, Delta table creation) untimed; hours 1..--repeat are
each timed once per path: a steady-state ingest that also dedupes against the earlier hours in
bronze, then the baseline and the floors on the same drop. Medians are printed.

Two floors are timed beside them on the same hour: the parts of the ingest that no validation
design can remove, each with a JSON read that validates nothing (Spark's typed reader):
- `floor_write`: read -> bronze-shaped rows -> Delta table partitioned by event date;
- `floor_dedupe`: the same plus the ingest's own dedupe (`transform.assign_fates`: first copy
  in the drop, and against bronze's other hours).
`floor_ratio` = baseline / floor_dedupe: the ratio an ingest with this dedupe would reach
if validation, quarantine and bookkeeping cost nothing.

    make bench-ingest                       # or: .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --events 200000 --repeat 1 --keep

Prints figures only (no assertions on time); the target is ratio >= 0.5.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    """Generate the hours, time every path on each, print events/s and the median ratios."""
    from reclake.config import Settings
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.ingest.layout import drop_uri
    from reclake.spark import get_spark
    from reclake.timeutil import HOUR, iso, parse_utc

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events in the hour")
    p.add_argument("--repeat", type=int, default=3, help="timed hours (medians are printed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake")
    args = p.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="reclake-bench-ingest-"))
    settings = Settings(
        lake_root=(root / "lake").as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        spark_jvm_options="",  # full JIT: a 1M-event hour is a long-running job
        spark_codegen=True,
    )
    hours = [iso(FIRST_HOUR + i * HOUR) for i in range(args.repeat + 2)]
    try:
        t = time.perf_counter()
        report = generate(
            settings, hours[0], hours[-1], GeneratorConfig(events_per_hour=args.events)
        )
        generate_s = time.perf_counter() - t
        spark = get_spark("bench-ingest", settings)

        def baseline(hour: str, out: str) -> None:
            drop = drop_uri(settings, parse_utc(hour))
            spark.read.json(drop).write.mode("overwrite").parquet((root / out).as_uri())

        def timed(run, *run_args) -> float:
            t = time.perf_counter()
            run(*run_args)
            return time.perf_counter() - t

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
        figures = {
            "events_per_hour": args.events,
            "generate_s": round(generate_s, 1),
            "files_per_hour": report.total.files // (len(hours) - 1),
            "lines": [r["lines"] for r in results],
            **{f"{p}_s": [round(r[p], 1) for r in results] for p in paths},
            **{f"{p}_events_per_s": rate(p) for p in paths},
            "ratio": ratio("ingest"),
            "floor_ratio": ratio("floor_dedupe"),
            "last_hour": ingest.totals(),
        }
        print(json.dumps(figures))
        spark.stop()
    finally:
        if args.keep:
            print(f"lake kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def floor(spark, settings, hour: str, out: str, dedupe: bool) -> int:
    """Write the hour's rows that Spark's typed JSON reader accepts as bronze rows to a fresh
    Delta table (with the ingest's dedupe when asked); returns the rows written."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from reclake.contract import EVENT_FIELDS
    from reclake.ingest import transform
    from reclake.ingest.layout import drop_uri
    from reclake.ingest.rules import SQL_TYPE, future_horizon
    from reclake.ingest.run import ids_in_other_hours, line_position
    from reclake.timeutil import parse_utc

    arrival = parse_utc(hour)
    horizon = future_horizon(arrival, settings.max_future_skew_minutes)
    typed = ", ".join(f"{f.name} {SQL_TYPE[f.json_type]}" for f in EVENT_FIELDS)
    rows = (
        spark.read.schema(typed)
        .json(drop_uri(settings, arrival))
        .select("*", *line_position(arrival))
        .withColumn("event_time", F.col("event_time").try_cast("timestamp"))
        # The future-timestamp rule, so the table gets the bronze's partitions, not hundreds.
        .where(F.col("event_time") <= F.lit(horizon))
    )
    rows = transform.with_lateness(rows, arrival, settings.allowed_lateness_hours)
    if dedupe:
        # As the ingest does: parse once, learn the dates, then dedupe against those dates.
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        dates = [r[0] for r in rows.select("event_date").distinct().collect()]
        fated = transform.assign_fates(rows, ids_in_other_hours(spark, settings, arrival, dates))
    else:
        fated = rows.withColumn("fate", F.lit(transform.NEW))
    bronze = transform.bronze_rows(fated)
    bronze.write.format("delta").mode("overwrite").partitionBy("event_date").save(out)
    rows.unpersist()
    return spark.read.format("delta").load(out).count()


if __name__ == "__main__":
    sys.exit(main())
