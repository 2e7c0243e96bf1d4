"""Benchmark the interval-native pipeline: the same events spread over many hours and packed
into one, each through ingest -> tiles -> labels -> samples in interval runs, and the
hour-by-hour path over the spread hours, all in one process on local[2].

- `spread`: `--events` generated events (default 2M) over `--hours` arrival hours (240);
- `packed`: the same number of events in one arrival hour;
each then followed by the empty drops of the label lag (4 arrival hours by default, so the
last impression hour is final). Interval runs: ingest and tiles over every arrival hour,
labels and samples over the impression hours, each stage one call. Then validate, audit and
publish of the spread lake's last day (the snapshot DAG's work), with the audit's share of
it. Prints both times, their ratio
`spread_over_packed` (target <= 3: cost follows rows, not hours; the spread case has more
tile rows, so both tile counts are printed) and the hour-by-hour path over the spread hours
(each arrival hour: ingest, tiles, then labels and samples of the hour that became final),
with `hourly_over_interval` (target >= 20). `--hourly-hours K` times only the first K hours
of that path and scales the time to all hours (printed as `hourly_extrapolated`).

    make bench-backfill                 # or: .venv/bin/python bench/bench_backfill.py
    .venv/bin/python bench/bench_backfill.py --events 200000 --hours 48 --hourly-hours 12

Prints figures only (no assertions on time). Run it on an idle machine.
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

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

FIRST_HOUR = datetime(2026, 11, 20, tzinfo=UTC)
PARTS = ("spread", "packed", "snapshot", "hourly")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=2_000_000, help="events in each case")
    p.add_argument("--hours", type=int, default=240, help="arrival hours of the spread case")
    p.add_argument(
        "--hourly-hours",
        type=int,
        default=None,
        help="time the hour-by-hour path on this many hours only (default: all), then scale",
    )
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="what to run (packed and hourly need spread for their ratios)",
    )
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--keep", action="store_true", help="keep the temporary lakes")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate both cases, time the interval runs and the hour-by-hour path, print JSON."""
    from reclake.config import Settings
    from reclake.orchestration import label_lag_hours
    from reclake.spark import get_spark

    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="reclake-bench-backfill-"))
    base = Settings(
        lake_root=(root / "warm").as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=4,
        spark_jvm_options="",  # full JIT: the interval runs are long-running jobs
        spark_codegen=True,
    )
    lag = label_lag_hours(base)
    try:
        spark = get_spark("bench-backfill", base)
        figures: dict = {"events": args.events, "spread_hours": args.hours, "lag_hours": lag}
        spread = case(base, root, "spread", args.events, args.hours, args, lag)
        packed = (
            case(base, root, "packed", args.events, 1, args, lag)
            if "packed" in args.parts
            else None
        )
        # Warm the JVM up (JIT, class loading) on a small copy before anything is timed.
        warm = case(base, root, "warm", max(args.events // 100, 1000), 2, args, lag)
        run_interval(spark, warm, 2, lag)
        timing = run_interval(spark, spread, args.hours, lag)
        figures.update({f"spread_{k}": v for k, v in timing.items()})
        if packed is not None:
            timing = run_interval(spark, packed, 1, lag)
            figures.update({f"packed_{k}": v for k, v in timing.items()})
            figures["spread_over_packed"] = round(
                figures["spread_total_s"] / figures["packed_total_s"], 2
            )
        if "snapshot" in args.parts:
            # What the snapshot DAG runs over the spread lake's last day (the audit's share).
            figures.update(run_snapshot(spark, spread, args.hours))
        if "hourly" in args.parts:
            hourly = lake_over(spread, root, "hourly")
            figures.update(run_hourly(spark, hourly, args.hours, args.hourly_hours, lag))
            figures["hourly_over_interval"] = round(
                figures["hourly_extrapolated_s"] / figures["spread_total_s"], 1
            )
        print(json.dumps(figures))
        spark.stop()
    finally:
        if args.keep:
            print(f"lakes kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def lake_over(settings, root: Path, name: str):
    """Settings of a fresh, empty lake over the same landing drops."""
    return dataclasses.replace(settings, lake_root=(root / name).as_uri())


def case(base, root: Path, name: str, events: int, hours: int, args, lag: int):
    """Settings of a fresh lake whose landing holds `events` events over `hours` arrival hours
    plus `lag` empty drops (the hours that make the last impression hour final)."""
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest.layout import drop_uri
    from reclake.lakefs import local_path
    from reclake.timeutil import HOUR

    landing = root / f"{name}-landing"
    settings = dataclasses.replace(
        base, lake_root=(root / name).as_uri(), landing_root=landing.as_uri()
    )
    config = GeneratorConfig(
        events_per_hour=max(events // hours, 1), n_users=args.users, n_items=args.items
    )
    generate(settings, FIRST_HOUR, FIRST_HOUR + hours * HOUR, config)
    for n in range(hours, hours + lag):
        Path(local_path(drop_uri(settings, FIRST_HOUR + n * HOUR))).mkdir(parents=True)
    return settings


def run_interval(spark, settings, hours: int, lag: int) -> dict:
    """Each stage once over the whole range; seconds per stage, total and tile rows."""
    from reclake.features.dims import load_dims
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.ingest import ingest_events
    from reclake.timeutil import HOUR

    arrivals = (FIRST_HOUR, FIRST_HOUR + (hours + lag) * HOUR)
    sampled = (FIRST_HOUR, FIRST_HOUR + hours * HOUR)
    stages = {
        "ingest": lambda: ingest_events(spark, settings, *arrivals),
        "dims": lambda: load_dims(spark, settings),
        "tiles": lambda: build_tiles(spark, settings, *arrivals),
        "labels": lambda: label_impressions(spark, settings, *sampled),
        "samples": lambda: build_training_samples(spark, settings, *sampled),
    }
    out = {}
    for name, stage in stages.items():
        t = time.perf_counter()
        result = stage()
        out[f"{name}_s"] = round(time.perf_counter() - t, 1)
        if name == "tiles":
            out["tile_rows"] = sum(result.rows.values())
        if name == "samples":
            out["sample_rows"] = result.rows
    out["total_s"] = round(sum(v for k, v in out.items() if k.endswith("_s")), 1)
    return out


def run_snapshot(spark, settings, hours: int) -> dict:
    """validate -> audit -> publish of the last (up to) 24 sampled hours, each timed: the
    snapshot DAG's work for a day, and the share of it the point-in-time audit takes.

    Then the same validate and audit again, once after another and once at the same time
    (two threads, one Spark application): whether running the audit beside validation
    hides its cost. CPU seconds (driver JVM and Python) say how much of the 2 cores each used.
    """
    from reclake.quality.audit import audit_version
    from reclake.quality.validate import validate_table
    from reclake.snapshots import publish
    from reclake.timeutil import HOUR

    end = FIRST_HOUR + hours * HOUR
    start = max(FIRST_HOUR, end - 24 * HOUR)

    def validate():
        return validate_table(spark, settings, "training_samples", start=start, end=end)

    def audit():  # of the version the first validation picked
        v = result.version
        return audit_version(settings, "training_samples", v, start=start, end=end)

    result, validate_s, _ = timed(spark, validate)
    checked, audit_s, _ = timed(spark, audit)
    publish_s = 0.0
    if result.success and checked.success:  # publish refuses otherwise
        t = time.perf_counter()
        publish(
            settings,
            "training_samples",
            result.version,
            result.id,
            audit_id=checked.id,
            require_audit=True,
        )
        publish_s = time.perf_counter() - t
    total = validate_s + audit_s + publish_s
    # Warm, one after the other, then side by side.
    _, validate2_s, validate2_cpu = timed(spark, validate)
    _, audit2_s, audit2_cpu = timed(spark, audit)
    _, both_s, both_cpu = timed(spark, lambda: side_by_side(validate, audit))
    return {
        "snapshot_hours": int((end - start) / HOUR),
        "snapshot_rows": result.statistics.get("row_count"),
        "validation_passed": result.success,
        "validation_failures": [f.get("expectation") for f in result.failures][:5],
        "snapshot_validate_s": round(validate_s, 1),
        "snapshot_audit_s": round(audit_s, 1),
        "snapshot_publish_s": round(publish_s, 1),
        "audit_rows_checked": checked.rows_checked,
        "audit_passed": checked.success,
        "audit_bronze_dates": checked.bronze_dates,
        "audit_share_of_snapshot": round(audit_s / total, 2),
        "warm_validate_s": round(validate2_s, 1),
        "warm_validate_cpu_s": round(validate2_cpu, 1),
        "warm_audit_s": round(audit2_s, 1),
        "warm_audit_cpu_s": round(audit2_cpu, 1),
        "side_by_side_s": round(both_s, 1),
        "side_by_side_cpu_s": round(both_cpu, 1),
        # What the audit adds to validation's wall time, after it and beside it.
        "audit_added_after": round(audit2_s / validate2_s, 2),
        "audit_added_beside": round((both_s - validate2_s) / validate2_s, 2),
    }


def timed(spark, work):
    """(work's result, wall seconds, CPU seconds of the driver JVM and this process)."""
    cpu, t = process_cpu_s(spark), time.perf_counter()
    value = work()
    return value, time.perf_counter() - t, process_cpu_s(spark) - cpu


def process_cpu_s(spark) -> float:
    """CPU seconds used so far by the driver JVM (with its children) and this process."""
    import os

    pid = spark.sparkContext._gateway.proc.pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    jvm_ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    own = os.times()
    return jvm_ticks / os.sysconf("SC_CLK_TCK") + own.user + own.system


def side_by_side(*works) -> list:
    """Run the callables in threads at once (Spark jobs from each interleave); their results."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(works)) as pool:
        return [f.result() for f in [pool.submit(w) for w in works]]


def run_hourly(spark, settings, hours: int, timed_hours: int | None, lag: int) -> dict:
    """The hour-by-hour path (what reclake_hourly runs per arrival hour) over the first
    `timed_hours` arrival hours; its per-hour costs scaled to all hours + lag arrivals."""
    from reclake.features.dims import load_dims
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.ingest import ingest_events
    from reclake.timeutil import HOUR

    total = hours + lag
    n = min(timed_hours or total, total)
    load_dims(spark, settings)
    arriving, labeling = [], []
    for i in range(n):
        arrival = FIRST_HOUR + i * HOUR
        t = time.perf_counter()
        ingest_events(spark, settings, arrival, arrival + HOUR)
        build_tiles(spark, settings, arrival, arrival + HOUR)
        arriving.append(time.perf_counter() - t)
        labeled = arrival - lag * HOUR
        if labeled >= FIRST_HOUR:
            t = time.perf_counter()
            label_impressions(spark, settings, labeled, labeled + HOUR)
            build_training_samples(spark, settings, labeled, labeled + HOUR)
            labeling.append(time.perf_counter() - t)
    per_arrival = sum(arriving) / len(arriving)
    per_label = sum(labeling) / len(labeling) if labeling else 0.0
    return {
        "hourly_timed_hours": n,
        "hourly_s": round(sum(arriving) + sum(labeling), 1),
        "hourly_ingest_tiles_s_per_hour": round(per_arrival, 2),
        "hourly_labels_samples_s_per_hour": round(per_label, 2),
        # every arrival hour ingests and builds tiles; `hours` of them label and sample
        "hourly_extrapolated_s": round(per_arrival * total + per_label * hours, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
