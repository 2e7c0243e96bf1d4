"""Benchmark of hourly compaction + Z-order (`make bench-maintenance`).

Synthesizes two tables from the same hourly appends (one day by default), one delta-rs commit
per hour (fast; the layout is what matters), then runs reclake's optimize_table on each
(OPTIMIZE ... ZORDER BY the table's policy columns) and prints, before and after:
  - `events` (partitioned by event_date, Z-ordered by user_id, item_id): random user_id /
    item_id, each append `--files` small files, as a multi-task Spark write leaves them;
  - `item_tiles_hourly` (partitioned by date, Z-ordered by item_id; schema from the feature
    definitions): one row per item with an impression in the hour, the impressions drawn by
    the generator's Zipf item popularity, so the active items per hour are heavy-tailed in
    their counts; an append this small is one file (delta-rs does not split it).
For each table: file count, average file size and files per date partition; per lookup
(user_id point and 1 % item_id range on events; item_id point and 1 % item_id range on the
tiles; within the last date when there are several) the files read as a fraction of all files
and of the files in the partitions the query touches, from Delta min/max statistics (mean over
many random keys) and from Spark's scan metric numFiles (one concrete key); the Spark query
time before (time travel to the pre-optimize version) / after; the bytes an item_id range
reads on each table; and the tiles Z-ordered at 1/16 of the target (`--tile-compare-kb`).
With --compare COLS `events` is also Z-ordered by COLS, for the trade-off.

Scale: what decides the fraction read is files per date partition after compaction, not bytes,
so the table is a scale model. The default gives about 1,150 files a date, the layout of a day
of about 39 GB at the policy's 32 MiB target: about 30M events an hour at 54 bytes a bronze
event (a billion users, under one event each a day). With two Z-order columns a lookup on one
reads about 1/sqrt(files a date), so this is the volume at which both lookups stay under 10 %.
The issue's ingest scale (1M events an hour, about 39 files of 32 MiB a day) is
`--appends 240 --rows 4000 --files 4 --target-kb 64`. Usage:
  .venv/bin/python bench/bench_maintenance.py [--appends 24] [--rows 125000] [--files 125]
      [--target-kb 64] [--tile-catalog N] [--tile-target-kb KB] [--tile-compare-kb KB]
      [--compare a,b]
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
import pyarrow.compute as pc

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from reclake.config import Settings
from reclake.features.definitions import DEFINITIONS
from reclake.generator_world import ITEM_POPULARITY_ZIPF
from reclake.maintenance import skipping
from reclake.maintenance.optimize import optimize_table, run_optimize
from reclake.maintenance.policy import policy_for
from reclake.snapshots.deltars import open_table, rs_uri
from reclake.spark import get_spark
from reclake.tables import table

USERS, ITEMS = 200_000, 100_000
ISSUE_EVENTS_PER_HOUR = 1_000_000  # the issue's ingest scale; the tile catalog scales by it
POLICY_FILE_MIB = 32  # the production target file size the scale model stands for
BRONZE_EVENT_BYTES = 54  # one bronze event in Parquet (docs/maintenance.md)
START = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = 200  # random keys per lookup for the Delta-statistics estimate
ITEM = DEFINITIONS.entity("item")
TILES = ITEM.tile_table  # item_tiles_hourly
# Per impression, the chance that it also produced each action (tile counts only; the layout
# does not depend on them).
ACTION_RATES = {"impression": 1.0, "play": 0.35, "like": 0.04, "share": 0.01, "skip": 0.2}
ARROW_TYPES = {"BIGINT": pa.int64(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "DATE": pa.date32()}


def synthesize(uri: str, appends: int, rows: int, files: int, seed: int = 7) -> None:
    """One delta-rs commit per hour of events, written as `files` files."""

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
        _append(uri, batch, files, "event_date")


def _append(uri: str, batch: pa.Table, files: int, partition: str) -> None:
    """One delta-rs commit of `batch` as `files` files."""
    from deltalake import write_deltalake

    # A tiny target size makes delta-rs close a file after every batch: `files` files.
    write_deltalake(
        rs_uri(uri),
        batch.to_batches(max_chunksize=-(-batch.num_rows // files)),
        mode="append",
        partition_by=[partition],
        target_file_size=1,
    )


def tile_schema() -> pa.Schema:
    """Arrow schema of the item tile table, from the feature definitions."""
    fields = []
    for name, ddl in DEFINITIONS.tile_columns(ITEM):
        kind = ddl.removesuffix(" NOT NULL")
        if kind not in ARROW_TYPES:
            raise ValueError(f"tile column {name} {ddl}: not synthesized by this benchmark")
        fields.append(pa.field(name, ARROW_TYPES[kind], nullable=kind == ddl))
    return pa.schema(fields)


def synthesize_tiles(
    uri: str, appends: int, events: int, catalog: int, files: int, seed: int = 13
) -> np.ndarray:
    """One delta-rs commit per hour of item tiles, in `files` batches; returns the item ids.

    Each hour draws `events` impressions from a catalog of `catalog` items with Zipf
    popularity (the generator's exponent, ranks in random id order); every item drawn at least
    once gets one tile row. The catalog's ids are spread over 1..ITEMS, the key space of
    `events`, so an item_id range selects the same share of the catalog on both tables. Rows
    are shuffled before they are split, as a hash-partitioned Spark write leaves them (delta-rs
    writes an hour this small as one file, whatever the batches).
    """
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, ITEMS, dtype=np.int64), catalog, replace=False))
    weights = 1.0 / np.arange(1, catalog + 1) ** ITEM_POPULARITY_ZIPF
    popularity = weights[rng.permutation(catalog)] / weights.sum()
    schema = tile_schema()
    for h in range(appends):
        hour = START + timedelta(hours=h)
        drawn = np.bincount(rng.choice(catalog, events, p=popularity), minlength=catalog)
        active = rng.permutation(np.flatnonzero(drawn))
        impressions = drawn[active].astype(np.int64)
        by_type = {t: rng.binomial(impressions, r) for t, r in ACTION_RATES.items()}
        values: dict[str, object] = {
            ITEM.key: ids[active],
            "hour": pa.array([hour] * active.size, schema.field("hour").type),
            "date": pa.array([hour.date()] * active.size, pa.date32()),
        }
        for agg in DEFINITIONS.aggregations:
            counts = by_type.get(agg.event_type, np.zeros_like(impressions))
            if agg.kind == "count":
                values[agg.name] = counts
            else:  # a sum, e.g. watch_ms of the plays: up to a minute per play
                values[agg.name] = counts * rng.integers(0, 60_000, counts.size)
        batch = pa.table({f.name: values[f.name] for f in schema}, schema=schema)
        _append(uri, batch, files, "date")
    return ids


def issue_active_items(impressions: int = ISSUE_EVENTS_PER_HOUR) -> float:
    """Expected items with at least one impression in an hour, over ITEMS items with the
    generator's Zipf popularity (Poisson approximation)."""
    weights = 1.0 / np.arange(1, ITEMS + 1) ** ITEM_POPULARITY_ZIPF
    return float((1 - np.exp(-impressions * weights / weights.sum())).sum())


@dataclass(frozen=True)
class Lookup:
    """A lookup predicate: one column's [low, low + width], optionally within some dates."""

    label: str
    column: str
    width: int  # 0 for a point lookup
    space: int  # keys are drawn from 1..space
    dates: frozenset[date] | None = None
    partition: str = "event_date"

    def sql(self, low: int) -> str:
        """The predicate for one key (range starting at `low`)."""
        if self.width:
            text = f"{self.column} BETWEEN {low} AND {low + self.width}"
        else:
            text = f"{self.column} = {low}"
        if self.dates:
            text += f" AND {self.partition} BETWEEN '{min(self.dates)}' AND '{max(self.dates)}'"
        return text

    def files(self, stats: pa.Table, low: int) -> skipping.FilesRead:
        """Files the Delta statistics say this key's query must read."""
        return skipping.overlapping(
            stats, self.column, low, low + self.width, self.partition, self.dates
        )

    def mean_fractions(self, stats: pa.Table, lows: np.ndarray) -> tuple[float, float]:
        """Mean fraction of table files and of touched-partition files over many keys."""
        reads = [self.files(stats, int(low)) for low in lows]
        return (
            float(np.mean([r.of_table for r in reads])),
            float(np.mean([r.of_partitions for r in reads])),
        )

    def mean_bytes(self, stats: pa.Table, lows: np.ndarray) -> float:
        """Mean bytes of the files the statistics say a key's query must read."""
        lo, hi = stats[f"min.{self.column}"], stats[f"max.{self.column}"]
        sizes = stats["size_bytes"]
        total = 0
        for low in lows:
            hit = pc.and_(pc.less_equal(lo, int(low) + self.width), pc.greater_equal(hi, int(low)))
            total += pc.sum(pc.filter(sizes, pc.fill_null(hit, True))).as_py() or 0
        return total / len(lows)


def timed_scan(spark, uri: str, predicate: str, version: int, runs: int) -> tuple[float, int]:
    """Median seconds of a filtered read at a table version, and its files scanned."""
    times, files = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        df = spark.read.format("delta").option("versionAsOf", version).load(uri)
        files = skipping.scanned_files(df.where(predicate))
        times.append(time.perf_counter() - started)
    return statistics.median(times), files


def layout(stats: pa.Table, partition: str) -> tuple[int, float, str]:
    """Files, average KiB and the range of files per date partition."""
    per_date = skipping.files_per_partition(stats, partition).values()
    kib = sum(stats["size_bytes"].to_pylist()) / max(1, stats.num_rows) / 1024
    return stats.num_rows, round(kib, 1), f"{min(per_date)}-{max(per_date)}"


def row(name: str, *cells: object) -> None:
    """One aligned output line."""
    print(f"  {name:<60}" + "".join(f"{c!s:>16}" for c in cells))


def report_table(
    spark,
    uri: str,
    versions: tuple[int, int],
    lookups: list[Lookup],
    keys: dict[str, np.ndarray],
    runs: int,
) -> tuple[pa.Table, pa.Table]:
    """Print one table's layout and, per lookup, files read and query time; return its stats
    before / after."""
    before, after = (skipping.file_stats(uri, v) for v in versions)
    partition = lookups[0].partition
    row("", "before", "after")
    (fb, kb, db), (fa, ka, da) = layout(before, partition), layout(after, partition)
    row("files", fb, fa)
    row("average file size (KiB)", kb, ka)
    row(f"files per {partition} partition", db, da)
    print(f"\n  files read, Delta min/max stats, mean over {KEYS} random keys")
    print("  (of table = of all files; of touched = of the files in the dates queried)")
    for lk in lookups:
        table_b, touched_b = lk.mean_fractions(before, keys[lk.label])
        table_a, touched_a = lk.mean_fractions(after, keys[lk.label])
        row(f"{lk.label}: of table", f"{table_b:.1%}", f"{table_a:.1%}")
        row(f"{lk.label}: of touched", f"{touched_b:.1%}", f"{touched_a:.1%}")

    print(f"\n  Spark, one key each: files scanned (numFiles) and median time of {runs}")
    ratios = []
    for lk in lookups:
        low = int(keys[lk.label][0])
        tb, nb = timed_scan(spark, uri, lk.sql(low), versions[0], runs)
        ta, na = timed_scan(spark, uri, lk.sql(low), versions[1], runs)
        expected = lk.files(after, low).read
        print(f"  {lk.label}: WHERE {lk.sql(low)}")
        row("    files scanned", f"{nb} of {fb}", f"{na} of {fa}")
        row("    seconds", f"{tb:.2f}", f"{ta:.2f}")
        if na != expected:
            print(f"  ! Spark scanned {na} files, Delta statistics predict {expected}")
        ratios.append((lk.label, tb / ta))
    for label, ratio in ratios:
        row(f"time ratio before/after: {label}", "", f"{ratio:.2f}x")
    return before, after


def optimize(spark, settings: Settings, name: str, target_kb: int) -> tuple[int, int]:
    """optimize_table with the policy at `target_kb`; print its summary; return the versions
    before / after."""
    uri = table(name).uri(settings)
    before = open_table(uri).version()
    started = time.perf_counter()
    report = optimize_table(
        spark, replace(settings, maintenance_target_file_bytes=target_kb * 1024), name
    )
    print(
        f"\n=== {name} (Z-ordered by {', '.join(report.zorder_by) or '-'}): optimize_table "
        f"{time.perf_counter() - started:.1f}s, {len(report.partitions)} partitions, "
        f"target file {target_kb} KiB"
    )
    return before, open_table(uri).version()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=24)
    parser.add_argument("--rows", type=int, default=125_000, help="events per hourly append")
    # delta-rs writes at least about 1,000 rows a file: keep rows / files >= 1000.
    parser.add_argument("--files", type=int, default=125, help="files per hourly append")
    parser.add_argument("--target-kb", type=int, default=64, help="OPTIMIZE target file size")
    parser.add_argument(
        "--tile-catalog",
        type=int,
        help=f"items in the tile catalog (default: {ITEMS:,} scaled by --rows / 1M)",
    )
    parser.add_argument(
        "--tile-target-kb", type=int, help="OPTIMIZE target for the tiles (default: --target-kb)"
    )
    parser.add_argument(
        "--tile-compare-kb",
        type=int,
        help="also Z-order a copy of the tiles at this target, 0 for none (default: 1/16 of it)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="also Z-order a copy of events by these columns (a,b)")
    parser.add_argument("--lake", help="lake folder (default: a temporary folder)")
    args = parser.parse_args(argv)
    catalog = args.tile_catalog or max(100, round(ITEMS * args.rows / ISSUE_EVENTS_PER_HOUR))
    tile_target_kb = args.tile_target_kb or args.target_kb
    if args.tile_compare_kb is None:
        args.tile_compare_kb = max(1, tile_target_kb // 16)

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    lake = Path(args.lake or tempfile.mkdtemp(prefix="reclake-bench-maint-"))
    settings = Settings(
        lake_root=lake.resolve().as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        spark_codegen=True,  # benchmark-scale data, not the embedded setup's small hours
        maintenance_target_file_bytes=args.target_kb * 1024,
    )
    uri, tiles_uri = table("events").uri(settings), table(TILES).uri(settings)
    started = time.perf_counter()
    synthesize(uri, args.appends, args.rows, args.files)
    print(
        f"synthesized events: {args.appends} hourly appends x {args.rows} rows x {args.files} "
        f"files in {time.perf_counter() - started:.1f}s -> {uri}"
    )
    started = time.perf_counter()
    catalog_ids = synthesize_tiles(tiles_uri, args.appends, args.rows, catalog, args.files)
    tile_rows = pa.table(open_table(tiles_uri).to_pyarrow_dataset().to_table(columns=["date"]))
    print(
        f"synthesized {TILES}: {args.appends} hourly appends, "
        f"{len(open_table(tiles_uri).file_uris())} files, "
        f"{catalog:,} items (Zipf {ITEM_POPULARITY_ZIPF}), {args.rows} impressions an hour: "
        f"{tile_rows.num_rows / args.appends:.0f} active items an hour on average "
        f"({tile_rows.num_rows / args.appends / catalog:.0%} of the catalog), "
        f"in {time.perf_counter() - started:.1f}s -> {tiles_uri}"
    )
    tile_compare_uri = None
    if args.tile_compare_kb:
        tile_compare_uri = tiles_uri.rstrip("/") + "_compare"
        shutil.copytree(
            Path(tiles_uri.removeprefix("file://")),
            Path(tile_compare_uri.removeprefix("file://")),
        )
    compare_uri = None
    if args.compare:
        compare_uri = uri.rstrip("/") + "_compare"
        shutil.copytree(
            Path(uri.removeprefix("file://")), Path(compare_uri.removeprefix("file://"))
        )

    spark = get_spark("bench-maintenance", settings)
    rng = np.random.default_rng(11)

    # events, Z-ordered by the policy's columns
    versions = optimize(spark, settings, "events", args.target_kb)
    zorder = ", ".join(policy_for(settings, "events").zorder_by)
    per_date = skipping.files_per_partition(skipping.file_stats(uri), "event_date")
    dates = sorted(per_date)
    item_range = ITEMS // 100
    lookups = [
        Lookup("user_id = u (all dates)", "user_id", 0, USERS),
        Lookup("item_id 1% range, all dates", "item_id", item_range, ITEMS),
    ]
    if len(dates) > 1:
        lookups.append(Lookup("user_id = u, last date", "user_id", 0, USERS, frozenset(dates[-1:])))
    keys = {lk.label: rng.integers(1, lk.space - lk.width, KEYS) for lk in lookups}
    _, events_after = report_table(spark, uri, versions, lookups, keys, args.runs)
    range_keys = keys[lookups[1].label]
    files_a_date = statistics.mean(per_date.values())
    day_gb = files_a_date * POLICY_FILE_MIB * 2**20 / 1e9
    print(
        f"\n  scale model: {files_a_date:,.0f} files a date after compaction is the layout of "
        f"a day of about {day_gb:,.1f} GB at {POLICY_FILE_MIB} MiB files, about "
        f"{day_gb * 1e9 / BRONZE_EVENT_BYTES / 24 / 1e6:,.1f}M events an hour at "
        f"{BRONZE_EVENT_BYTES} bytes a bronze event"
    )

    # item_tiles_hourly, Z-ordered by item_id
    tile_versions = optimize(spark, settings, TILES, tile_target_kb)
    tile_dates = sorted(skipping.files_per_partition(skipping.file_stats(tiles_uri), "date"))
    tile_lookups = [
        Lookup("item_id = i (all dates)", "item_id", 0, ITEMS, None, "date"),
        Lookup("item_id 1% range, all dates", "item_id", item_range, ITEMS, None, "date"),
    ]
    if len(tile_dates) > 1:
        last = frozenset(tile_dates[-1:])
        tile_lookups.append(
            Lookup("item_id 1% range, last date", "item_id", item_range, ITEMS, last, "date")
        )
    # Point lookups of catalog items; the ranges use the same keys as on events.
    tile_keys = {lk.label: range_keys for lk in tile_lookups[1:]}
    tile_keys[tile_lookups[0].label] = rng.choice(catalog_ids, KEYS)
    _, tiles_after = report_table(
        spark, tiles_uri, tile_versions, tile_lookups, tile_keys, args.runs
    )

    print(f"\n=== item_id 1% range, all dates, after optimize: KiB read (Delta stats, {KEYS} keys)")
    events_kib = lookups[1].mean_bytes(events_after, range_keys) / 1024
    tiles_kib = tile_lookups[1].mean_bytes(tiles_after, range_keys) / 1024
    row(f"on events (Z-ordered by {zorder})", f"{events_kib:.0f}")
    row(f"on {TILES} (Z-ordered by item_id)", f"{tiles_kib:.0f}")

    # At the issue's scale: active items an hour and tile bytes a day, against 32 MiB files.
    active = issue_active_items()
    per_row = pc.sum(tiles_after["size_bytes"]).as_py() / pc.sum(tiles_after["num_records"]).as_py()
    day_mib = active * 24 * per_row / 2**20
    print(
        f"\n  at 1M impressions an hour over {ITEMS:,} items: about {active:,.0f} active items an "
        f"hour; at {per_row:.1f} bytes a tile row (compacted, measured above) {TILES} holds about "
        f"{day_mib:.0f} MiB a day: {day_mib / 32:.2f} files of 32 MiB, i.e. "
        f"{max(1, int(day_mib // 32))} file per date after compaction"
    )

    if tile_compare_uri:
        policy = replace(policy_for(settings, TILES), target_file_bytes=args.tile_compare_kb * 1024)
        started = time.perf_counter()
        run_optimize(spark, tile_compare_uri, policy, None)
        alt = skipping.file_stats(tile_compare_uri)
        per_date = np.mean(list(skipping.files_per_partition(alt, "date").values()))
        print(
            f"\n=== {TILES} with many files per date: the same tiles Z-ordered by item_id at a "
            f"{args.tile_compare_kb} KiB target ({time.perf_counter() - started:.1f}s), the "
            f"layout a table of about {per_date * 32 / 1024:.1f} GiB a day would have at 32 MiB "
            "(not the issue's scale); files read (Delta stats, of table / of touched)"
        )
        (fp, kp, dp), (fc, kc, dc) = layout(tiles_after, "date"), layout(alt, "date")
        row("", "policy target", "small target")
        row("files", fp, fc)
        row("average file size (KiB)", kp, kc)
        row("files per date partition", dp, dc)
        for lk in tile_lookups:
            pt, pp = lk.mean_fractions(tiles_after, tile_keys[lk.label])
            at, ap = lk.mean_fractions(alt, tile_keys[lk.label])
            row(lk.label, f"{pt:.1%} / {pp:.1%}", f"{at:.1%} / {ap:.1%}")

    if compare_uri:
        cols = tuple(c.strip() for c in args.compare.split(","))
        policy = replace(policy_for(settings, "events"), zorder_by=cols)
        started = time.perf_counter()
        run_optimize(spark, compare_uri, policy, None)
        alt = skipping.file_stats(compare_uri)
        print(
            f"\ncompare: events Z-ordered by {', '.join(cols)} in "
            f"{time.perf_counter() - started:.1f}s, {alt.num_rows} files; files read "
            "(Delta stats, of table / of touched)"
        )
        row("", "policy layout", "compare layout")
        for lk in lookups:
            pt, pp = lk.mean_fractions(events_after, keys[lk.label])
            at, ap = lk.mean_fractions(alt, keys[lk.label])
            row(lk.label, f"{pt:.1%} / {pp:.1%}", f"{at:.1%} / {ap:.1%}")
    print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
