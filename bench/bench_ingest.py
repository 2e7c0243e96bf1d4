"""Benchmark ingest_events against a bare spark.read.json(...).write.parquet(...) of the same
generated drop (1M events per arrival hour by default), both on local[2].

Two hours are generated. Hour 0 warms both paths up (JVM JIT, Delta table creation) untimed;
hour 1 is timed: a steady-state ingest that also dedupes against hour 0 already in bronze.

    make bench-ingest                       # or: .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --events 200000 --keep

Prints figures only (no assertions on time); the target is ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

HOURS = ("2026-11-20T00:00Z", "2026-11-20T01:00Z", "2026-11-20T02:00Z")


def main(argv: list[str] | None = None) -> int:
    """Generate one hour, time both pipelines, print events/s and the ratio."""
    from reclake.config import Settings
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.ingest.layout import drop_uri
    from reclake.spark import get_spark
    from reclake.timeutil import parse_utc

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events in the hour")
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
    try:
        t = time.perf_counter()
        config = GeneratorConfig(events_per_hour=args.events)
        report = generate(settings, HOURS[0], HOURS[2], config)
        generate_s = time.perf_counter() - t
        spark = get_spark("bench-ingest", settings)

        def baseline(hour: str, out: str) -> None:
            drop = drop_uri(settings, parse_utc(hour))
            spark.read.json(drop).write.mode("overwrite").parquet((root / out).as_uri())

        ingest_events(spark, settings, HOURS[0], HOURS[1])  # warm-up
        baseline(HOURS[0], "warmup")

        t = time.perf_counter()
        ingest = ingest_events(spark, settings, HOURS[1], HOURS[2])
        ingest_s = time.perf_counter() - t

        t = time.perf_counter()
        baseline(HOURS[1], "baseline")
        baseline_s = time.perf_counter() - t
        lines = ingest.totals()["input_lines"]
        figures = {
            "lines": lines,
            "files": report.total.files // 2,
            "generate_s": round(generate_s, 1),
            "ingest_s": round(ingest_s, 1),
            "baseline_s": round(baseline_s, 1),
            "ingest_events_per_s": round(lines / ingest_s),
            "baseline_events_per_s": round(lines / baseline_s),
            "ratio": round(baseline_s / ingest_s, 2),
            "ingest": ingest.totals(),
        }
        print(json.dumps(figures, sort_keys=True))
        spark.stop()
    finally:
        if args.keep:
            print(f"lake kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
