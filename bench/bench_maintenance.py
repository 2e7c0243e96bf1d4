"""Benchmark of hourly compaction + Z-order (`make bench-maintenance`).

Synthesizes an `events` table from hourly appends (10 days, partitioned by event_date, random
user_id / item_id; each append is several small files, as a multi-task Spark write leaves),
written with delta-rs (fast; the layout is what matters), then runs reclake's optimize_table
(OPTIMIZE ... ZORDER BY the table's policy columns) and prints:
  - file count, average file size and files per date partition, before / after;
  - per lookup (user_id point, 1 % item_id range, user_id point within 3 dates): the files
    read as a fraction of all files and of the files in the partitions the query touches,
    from Delta min/max statistics (mean over many random keys) and from Spark's scan
    metric numFiles (one concrete key), before / after;
  - Spark query time before (time travel to the pre-optimize version) / after.
With --compare COLS the same table is also Z-ordered by COLS, for the trade-off.

Scale: what decides the fraction read is files per date partition after compaction, so the
default target file size is chosen to give the issue's scale at the policy's 32 MiB target
(1M events/hour, about 54 bytes per bronze event: about 1.3 GB a day, about 39 files of
32 MiB; `--target-kb 256` gives the 128 MiB-file case, about 10 files a day). Usage:
  .venv/bin/python bench/bench_maintenance.py [--appends 240] [--rows 4000] [--target-kb 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from reclake.config import Settings
from reclake.maintenance import skipping
from reclake.maintenance.optimize import _run_optimize, optimize_table
from reclake.maintenance.policy import policy_for
from reclake.snapshots.deltars import open_table, rs_uri
from reclake.spark import get_spark
from reclake.tables import table

USERS, ITEMS = 200_000, 100_000
START = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = 200  # random keys per lookup for the Delta-statistics estimate


def synthesize(uri: str, appends: int, rows: int, files: int, seed: int = 7) -> None:
    """One delta-rs commit per hour of events, written as `files` files."""
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
        # A tiny target size makes delta-rs close a file after every batch: `files` files.
        write_deltalake(
            rs_uri(uri),
            batch.to_batches(max_chunksize=-(-rows // files)),
            mode="append",
            partition_by=["event_date"],
            target_file_size=1,
        )


@dataclass(frozen=True)
class Lookup:
    """A lookup predicate: one column's [low, low + width], optionally within some dates."""

    label: str
    column: str
    width: int  # 0 for a point lookup
    space: int  # keys are drawn from 1..space
    dates: frozenset[date] | None = None

    def sql(self, low: int) -> str:
        """The predicate for one key (range starting at `low`)."""
        if self.width:
            text = f"{self.column} BETWEEN {low} AND {low + self.width}"
        else:
            text = f"{self.column} = {low}"
        if self.dates:
            text += f" AND event_date BETWEEN '{min(self.dates)}' AND '{max(self.dates)}'"
        return text

    def files(self, stats: pa.Table, low: int) -> skipping.FilesRead:
        """Files the Delta statistics say this key's query must read."""
        return skipping.overlapping(
            stats, self.column, low, low + self.width, "event_date", self.dates
        )

    def mean_fractions(self, stats: pa.Table, lows: np.ndarray) -> tuple[float, float]:
        """Mean fraction of table files and of touched-partition files over many keys."""
        reads = [self.files(stats, int(low)) for low in lows]
        return (
            float(np.mean([r.of_table for r in reads])),
            float(np.mean([r.of_partitions for r in reads])),
        )


def timed_scan(spark, uri: str, predicate: str, version: int, runs: int) -> tuple[float, int]:
    """Median seconds of a filtered read at a table version, and its files scanned."""
    times, files = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        df = spark.read.format("delta").option("versionAsOf", version).load(uri)
        files = skipping.scanned_files(df.where(predicate))
        times.append(time.perf_counter() - started)
    return statistics.median(times), files


def layout(stats: pa.Table) -> tuple[int, float, str]:
    """Files, average KiB and the range of files per date partition."""
    per_date = skipping.files_per_partition(stats, "event_date").values()
    kib = sum(stats["size_bytes"].to_pylist()) / max(1, stats.num_rows) / 1024
    return stats.num_rows, round(kib, 1), f"{min(per_date)}-{max(per_date)}"


def row(name: str, *cells: object) -> None:
    """One aligned output line."""
    print(f"  {name:<60}" + "".join(f"{c!s:>16}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=240)
    parser.add_argument("--rows", type=int, default=4000, help="rows per hourly append")
    parser.add_argument("--files", type=int, default=4, help="files per hourly append")
    parser.add_argument("--target-kb", type=int, default=64, help="OPTIMIZE target file size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="also Z-order a copy by these columns (a,b)")
    parser.add_argument("--lake", help="lake folder (default: a temporary folder)")
    args = parser.parse_args(argv)

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    lake = Path(args.lake or tempfile.mkdtemp(prefix="reclake-bench-maint-"))
    settings = Settings(
        lake_root=lake.resolve().as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        maintenance_target_file_bytes=args.target_kb * 1024,
    )
    uri = table("events").uri(settings)
    started = time.perf_counter()
    synthesize(uri, args.appends, args.rows, args.files)
    before_version = open_table(uri).version()
    print(
        f"synthesized {args.appends} hourly appends x {args.rows} rows x {args.files} files "
        f"in {time.perf_counter() - started:.1f}s -> {uri}"
    )
    compare_uri = None
    if args.compare:
        compare_uri = uri.rstrip("/") + "_compare"
        shutil.copytree(
            Path(uri.removeprefix("file://")), Path(compare_uri.removeprefix("file://"))
        )

    spark = get_spark("bench-maintenance", settings)
    started = time.perf_counter()
    report = optimize_table(spark, settings, "events")
    optimize_s = time.perf_counter() - started
    after_version = open_table(uri).version()
    before, after = (
        skipping.file_stats(uri, before_version),
        skipping.file_stats(uri, after_version),
    )

    dates = sorted(skipping.files_per_partition(before, "event_date"))
    lookups = [
        Lookup("user_id = u (all dates)", "user_id", 0, USERS),
        Lookup("item_id in a 1% range (all dates)", "item_id", ITEMS // 100, ITEMS),
        Lookup("user_id = u, last 3 dates", "user_id", 0, USERS, frozenset(dates[-3:])),
    ]
    rng = np.random.default_rng(11)
    keys = {lk.label: rng.integers(1, lk.space - lk.width, KEYS) for lk in lookups}

    print(
        f"\noptimize_table: {optimize_s:.1f}s, {len(report.partitions)} partitions, "
        f"target file {args.target_kb} KiB, Z-order by {', '.join(report.zorder_by) or '-'}"
    )
    row("", "before", "after")
    (fb, kb, db), (fa, ka, da) = layout(before), layout(after)
    row("files", fb, fa)
    row("average file size (KiB)", kb, ka)
    row("files per date partition", db, da)
    print(f"\n  files read, Delta min/max stats, mean over {KEYS} random keys")
    print("  (of table = of all files; of touched = of the files in the dates queried)")
    for lk in lookups:
        table_b, touched_b = lk.mean_fractions(before, keys[lk.label])
        table_a, touched_a = lk.mean_fractions(after, keys[lk.label])
        row(f"{lk.label}: of table", f"{table_b:.1%}", f"{table_a:.1%}")
        if lk.dates:
            row(f"{lk.label}: of touched", f"{touched_b:.1%}", f"{touched_a:.1%}")

    print(f"\n  Spark, one key each: files scanned (numFiles) and median time of {args.runs}")
    ratios = []
    for lk in lookups:
        predicate = lk.sql(int(keys[lk.label][0]))
        tb, nb = timed_scan(spark, uri, predicate, before_version, args.runs)
        ta, na = timed_scan(spark, uri, predicate, after_version, args.runs)
        expected = lk.files(after, int(keys[lk.label][0])).read
        print(f"  {lk.label}: WHERE {predicate}")
        row("    files scanned", f"{nb} of {fb}", f"{na} of {fa}")
        row("    seconds", f"{tb:.2f}", f"{ta:.2f}")
        if na != expected:
            print(f"  ! Spark scanned {na} files, Delta statistics predict {expected}")
        ratios.append((lk.label, tb / ta))
    for label, ratio in ratios:
        row(f"time ratio before/after, {label}", "", f"{ratio:.2f}x")

    if compare_uri:
        cols = tuple(c.strip() for c in args.compare.split(","))
        policy = replace(policy_for(settings, "events"), zorder_by=cols)
        started = time.perf_counter()
        _run_optimize(spark, compare_uri, policy, None)
        alt = skipping.file_stats(compare_uri)
        print(
            f"\ncompare: Z-order by {', '.join(cols)} in {time.perf_counter() - started:.1f}s, "
            f"{alt.num_rows} files; files read (Delta stats, of table / of touched)"
        )
        row("", "policy layout", "compare layout")
        for lk in lookups:
            pt, pp = lk.mean_fractions(after, keys[lk.label])
            at, ap = lk.mean_fractions(alt, keys[lk.label])
            row(lk.label, f"{pt:.1%} / {pp:.1%}", f"{at:.1%} / {ap:.1%}")
    print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
