"""The audit's JVM-free recompute at scale, beside the floors of its bronze scan
(docs/quality.md, #19).

Writes a bronze-like Delta table with delta-rs (`--dates` dates of `--events-per-date`
events, 1.25M-row files, the bronze columns the audit reads; items Zipf-popular, users
mildly skewed) and the two dimension tables, draws 1,000 impressions of the last date as the
audit does, and times `audit_recompute.recompute()` on them (what the audit job runs after
its draw) and, with pyarrow alone:

- `bare`: the rows whose user or item was sampled (2 columns read, nothing kept);
- `item side`: the sampled items' on-time events summed per (item, hour, type), the input
  of every item window feature;
- `user side`: the sampled users' on-time events with the columns the user windows, the
  sequence and the category counts need (few rows, kept).

Prints wall and CPU seconds of each, twice (the second warm). Figures only; run it idle.
The three scans are the floor of `recompute`: it reads what `bare` reads and does the
work of both sides.

With `--samples N` it also writes N synthetic training_samples rows (`reader.synthetic`, 96
hours) and times the audit's two steps before the recompute: the draw of 1,000 rows
(`audit_sample.draw`) and the read of the drawn rows (`audit.sampled_rows`).

    .venv/bin/python bench/bench_audit_scan.py [--dates 8] [--events-per-date 5000000]
        [--samples 4000000]
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

FILE_ROWS = 1_250_000
USERS, ITEMS = 2_000_000, 200_000
TYPES = np.array(["impression", "play", "like", "share", "skip", "finish"])
TYPE_SHARE = np.array([0.6, 0.25, 0.05, 0.02, 0.05, 0.03])
CATEGORIES = np.array(["music", "comedy", "sports", "gaming", "cooking-asmr"])
ITEM_KEY = ["item_id", "event_hour", "event_type"]
USER_COLUMNS = ["event_id", "user_id", "item_id", "event_time", "event_hour", "event_type"]
USER_COLUMNS += ["watch_ms", "request_id"]
UTC_US = pa.timestamp("us", tz="UTC")


def write_bronze(uri: str, dates: int, per_date: int) -> None:
    """A bronze-like Delta table partitioned by event_date, one commit per file."""
    from deltalake import write_deltalake

    rng = np.random.default_rng(1)
    start = np.datetime64("2026-11-01T00:00:00", "us")
    written = 0
    for d in range(dates):
        for _ in range(max(1, per_date // FILE_ROWS)):
            n = min(FILE_ROWS, per_date)
            offset = rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")
            times = start + np.timedelta64(d, "D") + offset
            kinds = TYPES[rng.choice(len(TYPES), n, p=TYPE_SHARE)]
            table = pa.table(
                {
                    "event_id": pa.array([f"e{written + i}" for i in range(n)]),
                    "event_type": pa.array(kinds),
                    "event_time": pa.array(times, UTC_US),
                    # Density ~ x^(-2/3): some heavy users, most light.
                    "user_id": (USERS * rng.random(n) ** 3).astype(np.int64),
                    "item_id": (rng.zipf(1.2, n) % ITEMS).astype(np.int64),
                    "request_id": pa.array([f"r{(written + i) // 10}" for i in range(n)]),
                    "position": pa.array(rng.integers(0, 20, n), pa.int32()),
                    "watch_ms": pa.array(
                        rng.integers(0, 600_000, n), mask=kinds != "play", type=pa.int64()
                    ),
                    "event_hour": pa.array(
                        times.astype("datetime64[h]").astype("datetime64[us]"), UTC_US
                    ),
                    "beyond_lateness": pa.array(rng.random(n) < 0.001),
                    "event_date": pa.array(
                        np.full(n, start.astype("datetime64[D]") + np.timedelta64(d, "D"))
                    ),
                }
            )
            write_deltalake(uri, table, mode="append", partition_by=["event_date"])
            written += n


def write_dims(settings) -> None:
    """dims/users and dims/items (version 0 each), every id the events use."""
    from deltalake import write_deltalake

    from reclake.tables import table

    rng = np.random.default_rng(2)
    users = pa.table(
        {
            "user_id": np.arange(USERS, dtype=np.int64),
            "country": pa.array(np.where(rng.random(USERS) < 0.5, "DE", "US")),
            "device": pa.array(np.where(rng.random(USERS) < 0.5, "ios", "android")),
            "age_bucket": pa.array(np.full(USERS, "25-34")),
        }
    )
    items = pa.table(
        {
            "item_id": np.arange(ITEMS, dtype=np.int64),
            "category": pa.array(CATEGORIES[rng.integers(0, len(CATEGORIES), ITEMS)]),
            "duration_ms": rng.integers(10_000, 600_000, ITEMS).astype(np.int64),
            "created_at": pa.array(
                np.full(ITEMS, np.datetime64("2026-10-01T00:00:00", "us")), UTC_US
            ),
        }
    )
    write_deltalake(table("users").uri(settings), users)
    write_deltalake(table("items").uri(settings), items)


def sampled(root: Path, last_date: str) -> pa.Table:
    """1,000 impressions of the last date, drawn uniformly: event_id, user_id, item_id,
    event_time."""
    table = ds.dataset(root / f"event_date={last_date}", format="parquet").to_table(
        columns=["event_id", "user_id", "item_id", "event_time", "event_type"]
    )
    impressions = table.filter(pc.equal(table["event_type"], "impression"))
    rows = np.random.default_rng(7).choice(impressions.num_rows, 1000, replace=False)
    return impressions.take(pa.array(np.sort(rows)))


def cpu_s() -> float:
    """CPU seconds this process has used (every pyarrow thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, work: Callable[[], str]) -> None:
    """Run `work` and print its wall and CPU seconds and what it returned."""
    wall, cpu = time.perf_counter(), cpu_s()
    said = work()
    print(f"{name:10} {time.perf_counter() - wall:6.1f} s wall {cpu_s() - cpu:6.1f} CPU-s  {said}")


def time_draw(settings, rows: int) -> None:
    """Write `rows` synthetic samples; time the draw of 1,000 and the read of those rows."""
    from reclake.quality.audit import sampled_rows
    from reclake.quality.audit_sample import draw
    from reclake.reader import synthetic

    uri = synthetic.table_uri(settings)
    version = synthetic.write_samples(uri, synthetic.sample_batches(rows), mode="overwrite")
    print(f"training_samples {rows:,} rows (version {version})")
    picked = []

    def drawn() -> str:
        picked[:] = [draw(uri, version, None, 1000, seed=0)]
        return f"{len(picked[0].event_ids):,} drawn from {len(picked[0].dates)} dates"

    def read() -> str:
        return f"{len(sampled_rows(uri, version, picked[0].event_ids, picked[0].dates)):,} rows"

    for _ in range(2):
        timed("draw", drawn)
        timed("rows", read)


def main(argv: list[str] | None = None) -> int:
    """Build the lake, then time the recompute and the three scans twice."""
    from reclake.config import Settings
    from reclake.quality.audit_recompute import US_PER_HOUR, Probe, recompute

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=8)
    parser.add_argument("--events-per-date", type=int, default=5_000_000)
    parser.add_argument("--samples", type=int, default=0, help="also time the draw on N rows")
    args = parser.parse_args(argv)
    lake = Path(tempfile.mkdtemp(prefix="reclake-audit-scan-"))
    try:
        settings = Settings(lake_root=lake.as_uri())
        if args.samples:
            time_draw(settings, args.samples)
        root = lake / "bronze" / "events"
        write_bronze(root.as_uri(), args.dates, args.events_per_date)
        write_dims(settings)
        drawn = sampled(root, f"2026-11-{args.dates:02d}")
        users, items = pa.array(drawn["user_id"].unique()), pa.array(drawn["item_id"].unique())
        times = drawn["event_time"].cast(pa.int64()).to_pylist()
        probes = [
            Probe(e, t - t % US_PER_HOUR, t)
            for e, t in zip(drawn["event_id"].to_pylist(), times, strict=True)
        ]
        # The Parquet files without the log (the leading underscore keeps _delta_log out).
        bronze = ds.dataset(root, format="parquet", partitioning="hive")
        on_time = ~ds.field("beyond_lateness")
        print(f"events {bronze.count_rows():,}: sampled users {len(users)}, items {len(items)}")

        def audit_recompute() -> str:
            expected, dates = recompute(settings, probes, [(0, 0)])
            return f"{len(expected):,} rows recomputed from {dates} bronze dates"

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
            timed("recompute", audit_recompute)
            timed("bare", bare)
            timed("item side", item_side)
            timed("user side", user_side)
    finally:
        shutil.rmtree(lake, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
