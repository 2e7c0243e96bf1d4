"""Benchmark of hourly compaction + Z-order (`make bench-maintenance`).

Synthesizes an `events` table from 240 hourly appends (10 days, partitioned by event_date,
random user_id / item_id), written with delta-rs (fast; the layout is what matters), then
runs reclake's optimize_table (Spark OPTIMIZE ... ZORDER BY user_id, item_id per policy)
and prints:
  - file count and average file size before / after;
  - for a point lookup by user_id and a 1% range of item_id, the fraction of files whose
    Delta min/max statistics overlap the predicate (the files a reader must open);
  - Spark query time before (time travel to the pre-optimize version) / after, median of runs.
Figures only, no assertions on time. Usage:
  .venv/bin/python bench/bench_maintenance.py [--appends 240] [--rows 4000] [--target-kb 256]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from reclake.config import Settings
from reclake.maintenance.optimize import optimize_table
from reclake.snapshots.deltars import open_table, rs_uri
from reclake.spark import get_spark
from reclake.tables import table

USERS, ITEMS = 200_000, 100_000
START = datetime(2026, 1, 1, tzinfo=UTC)


def synthesize(uri: str, appends: int, rows: int, seed: int = 7) -> None:
    """One delta-rs append per hour of events with uniformly random users and items."""
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    for h in range(appends):
        hour = START + timedelta(hours=h)
        batch = pa.table(
            {
                "event_id": [f"e{h}-{i}" for i in range(rows)],
                "user_id": rng.integers(1, USERS, rows, dtype=np.int64),
                "item_id": rng.integers(1, ITEMS, rows, dtype=np.int64),
                "watch_ms": rng.integers(0, 60_000, rows, dtype=np.int64),
                "event_time": pa.array([hour] * rows, pa.timestamp("us", tz="UTC")),
                "event_date": pa.array([hour.date()] * rows, pa.date32()),
            }
        )
        write_deltalake(rs_uri(uri), batch, mode="append", partition_by=["event_date"])


def file_stats(uri: str, version: int | None = None) -> pa.Table:
    """Per-file size and min/max of user_id and item_id from the Delta log."""
    return pa.table(open_table(uri, version).get_add_actions(flatten=True))


def overlap_fraction(stats: pa.Table, column: str, low: int, high: int) -> float:
    """Fraction of files whose [min, max] of `column` overlaps [low, high]."""
    mins = np.asarray(stats[f"min.{column}"].to_numpy(zero_copy_only=False))
    maxs = np.asarray(stats[f"max.{column}"].to_numpy(zero_copy_only=False))
    return float(np.mean((mins <= high) & (maxs >= low)))


def timed_count(spark, uri: str, predicate: str, version: int, runs: int) -> float:
    """Median seconds of a filtered count at a table version."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        df = spark.read.format("delta").option("versionAsOf", version).load(uri)
        df.where(predicate).count()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=240)
    parser.add_argument("--rows", type=int, default=4000, help="rows per hourly append")
    parser.add_argument("--target-kb", type=int, default=256, help="OPTIMIZE target file size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lake", help="lake folder (default: a temporary folder)")
    args = parser.parse_args(argv)

    lake = Path(args.lake or tempfile.mkdtemp(prefix="reclake-bench-maint-"))
    settings = Settings(
        lake_root=lake.resolve().as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        maintenance_target_file_bytes=args.target_kb * 1024,
    )
    uri = table("events").uri(settings)
    started = time.perf_counter()
    synthesize(uri, args.appends, args.rows)
    before_version = open_table(uri).version()
    print(
        f"synthesized {args.appends} appends x {args.rows} rows "
        f"in {time.perf_counter() - started:.1f}s -> {uri}"
    )

    spark = get_spark("bench-maintenance", settings)
    started = time.perf_counter()
    report = optimize_table(spark, settings, "events")
    optimize_s = time.perf_counter() - started
    after_version = open_table(uri).version()

    before, after = file_stats(uri, before_version), file_stats(uri, after_version)
    rng = np.random.default_rng(11)
    user = int(rng.integers(1, USERS))
    item_low = int(rng.integers(1, ITEMS - ITEMS // 100))
    item_high = item_low + ITEMS // 100
    lookups = {
        f"user_id = {user}": ("user_id", user, user),
        f"item_id BETWEEN {item_low} AND {item_high}": ("item_id", item_low, item_high),
    }

    def row(name: str, b: object, a: object) -> None:
        print(f"  {name:<44} {b!s:>14} {a!s:>14}")

    print(
        f"\noptimize_table: {optimize_s:.1f}s, partitions {len(report.partitions)}, "
        f"target file {args.target_kb} KiB, Z-order {report.zorder_by}"
    )
    row("", "before", "after")
    row("files", before.num_rows, after.num_rows)
    row(
        "average file size (KiB)",
        round(sum(before["size_bytes"].to_pylist()) / before.num_rows / 1024, 1),
        round(sum(after["size_bytes"].to_pylist()) / after.num_rows / 1024, 1),
    )
    ratios = {}
    for predicate, (column, low, high) in lookups.items():
        fb = overlap_fraction(before, column, low, high)
        fa = overlap_fraction(after, column, low, high)
        row(f"files read: {predicate}", f"{fb:.1%}", f"{fa:.1%}")
        tb = timed_count(spark, uri, predicate, before_version, args.runs)
        ta = timed_count(spark, uri, predicate, after_version, args.runs)
        ratios[predicate] = tb / ta
        row(f"query s (median {args.runs}): {predicate}", f"{tb:.2f}", f"{ta:.2f}")
    for predicate, ratio in ratios.items():
        print(f"  time ratio before/after  {predicate}: {ratio:.2f}x")
    per_partition = after.num_rows / max(1, len(report.partitions))
    print(
        f"\nfiles per partition after: {per_partition:.1f} "
        f"(two-column Z-order: a point lookup reads ~1/sqrt(files per partition))"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
