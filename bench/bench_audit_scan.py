"""The floor of a JVM-free bronze scan for the point-in-time audit (docs/quality.md, #19).

Writes bronze-like Parquet (`--dates` dates of `--events-per-date` events, 1.25M-row files,
the bronze columns the audit reads; items Zipf-popular, users mildly skewed), draws 1,000
impressions of the last date as the audit does, and times with pyarrow alone:

- `bare`: the rows whose user or item was sampled (2 columns read, nothing kept);
- `item side`: the sampled items' on-time events summed per (item, hour, type), the input
  of every item window feature;
- `user side`: the sampled users' on-time events with the columns the user windows, the
  sequence and the category counts need (few rows, kept).

Prints wall and CPU seconds of each, twice (the second warm). Figures only; run it idle.

    .venv/bin/python bench/bench_audit_scan.py [--dates 8] [--events-per-date 5000000]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

FILE_ROWS = 1_250_000
USERS, ITEMS = 2_000_000, 200_000
TYPES = np.array(["impression", "play", "like", "share", "skip", "finish"])
TYPE_SHARE = np.array([0.6, 0.25, 0.05, 0.02, 0.05, 0.03])
ITEM_KEY = ["item_id", "event_hour", "event_type"]
USER_COLUMNS = ["event_id", "user_id", "item_id", "event_time", "event_hour", "event_type"]
USER_COLUMNS += ["watch_ms", "request_id"]


def write_bronze(root: Path, dates: int, per_date: int) -> None:
    """Bronze-like Parquet, partitioned by event_date like bronze/events."""
    rng = np.random.default_rng(1)
    start = np.datetime64("2026-11-01T00:00:00", "us")
    written = 0
    for d in range(dates):
        folder = root / f"event_date=2026-11-{d + 1:02d}"
        folder.mkdir(parents=True)
        for f in range(max(1, per_date // FILE_ROWS)):
            n = min(FILE_ROWS, per_date)
            offset = rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")
            times = start + np.timedelta64(d, "D") + offset
            kinds = TYPES[rng.choice(len(TYPES), n, p=TYPE_SHARE)]
            table = pa.table(
                {
                    "event_id": pa.array([f"e{written + i}" for i in range(n)]),
                    "event_type": pa.array(kinds),
                    "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
                    # Density ~ x^(-2/3): some heavy users, most light.
                    "user_id": (USERS * rng.random(n) ** 3).astype(np.int64),
                    "item_id": (rng.zipf(1.2, n) % ITEMS).astype(np.int64),
                    "request_id": pa.array([f"r{(written + i) // 10}" for i in range(n)]),
                    "watch_ms": pa.array(
                        rng.integers(0, 600_000, n), mask=kinds != "play", type=pa.int64()
                    ),
                    "event_hour": pa.array(
                        times.astype("datetime64[h]").astype("datetime64[us]"),
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "beyond_lateness": pa.array(rng.random(n) < 0.001),
                }
            )
            pq.write_table(table, folder / f"part-{f}.parquet", row_group_size=FILE_ROWS)
            written += n


def sampled_keys(root: Path, last_date: str) -> tuple[pa.Array, pa.Array]:
    """Users and items of 1,000 impressions of the last date, drawn uniformly."""
    table = ds.dataset(root / f"event_date={last_date}", format="parquet").to_table(
        columns=["user_id", "item_id", "event_type"]
    )
    impressions = table.filter(pc.equal(table["event_type"], "impression"))
    rows = np.random.default_rng(7).choice(impressions.num_rows, 1000, replace=False)
    users = np.unique(impressions["user_id"].to_numpy()[rows])
    items = np.unique(impressions["item_id"].to_numpy()[rows])
    return pa.array(users), pa.array(items)


def cpu_s() -> float:
    """CPU seconds this process has used (every pyarrow thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, work: Callable[[], str]) -> None:
    """Run `work` and print its wall and CPU seconds and what it returned."""
    wall, cpu = time.perf_counter(), cpu_s()
    said = work()
    print(f"{name:10} {time.perf_counter() - wall:6.1f} s wall {cpu_s() - cpu:6.1f} CPU-s  {said}")


def main(argv: list[str] | None = None) -> int:
    """Build the Parquet, then time the three scans twice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=8)
    parser.add_argument("--events-per-date", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="reclake-audit-scan-"))
    try:
        write_bronze(root, args.dates, args.events_per_date)
        users, items = sampled_keys(root, f"2026-11-{args.dates:02d}")
        bronze = ds.dataset(root, format="parquet", partitioning="hive")
        on_time = ~ds.field("beyond_lateness")
        print(f"events {bronze.count_rows():,}: sampled users {len(users)}, items {len(items)}")

        def bare() -> str:
            wanted = pc.is_in(ds.field("user_id"), users) | pc.is_in(ds.field("item_id"), items)
            return f"{bronze.count_rows(filter=wanted):,} rows of a sampled user or item"

        def item_side() -> str:
            rows = bronze.to_table(
                columns=[*ITEM_KEY, "watch_ms"],
                filter=pc.is_in(ds.field("item_id"), items) & on_time,
            )
            sums = rows.group_by(ITEM_KEY).aggregate([("watch_ms", "sum"), ([], "count_all")])
            return f"{rows.num_rows:,} events -> {sums.num_rows:,} (item, hour, type) sums"

        def user_side() -> str:
            rows = bronze.to_table(
                columns=USER_COLUMNS,
                filter=pc.is_in(ds.field("user_id"), users) & on_time,
            )
            return f"{rows.num_rows:,} events kept"

        for _ in range(2):
            timed("bare", bare)
            timed("item side", item_side)
            timed("user side", user_side)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
