"""`make demo`: the whole pipeline through real Airflow DAG runs on generated data.

Generates a few hours of interaction logs into the lake's landing area, runs `reclake_hourly`
for each arrival hour (ingest, dims, tiles, labels, samples, validation), then
`reclake_training_snapshot` for the hours that became final (validate, publish, announce),
reads the published snapshot back through the training reader and prints a summary.
Re-running it is safe: every step is idempotent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from reclake.config import PROJECT_ROOT, load_settings
from reclake.timeutil import HOUR, iso, parse_utc

DEMO_START = "2026-11-20T00:00Z"


def pipeline_hours(start: str, hours: int, lag: int) -> tuple[list, tuple]:
    """Arrival hours to run, and the [start, end) of the hours that end up labeled."""
    first = parse_utc(start)
    arrivals = [first + i * HOUR for i in range(hours)]
    labeled = (first, first + timedelta(hours=max(hours - lag, 0)))
    return arrivals, labeled


def table_summary(settings) -> list[dict]:
    """Version and row count of every table, read without a JVM (delta-rs)."""
    from reclake.snapshots.deltars import open_table
    from reclake.tables import TABLES

    rows = []
    for name, spec in TABLES.items():
        uri = spec.uri(settings)
        try:
            dt = open_table(uri)
        except Exception:  # a table the demo did not create (e.g. no quarantined rows)
            rows.append({"table": name, "version": "-", "rows": "-", "location": uri})
            continue
        count = sum(
            int(n)
            for n in dt.get_add_actions(flatten=True).column("num_records").to_pylist()
            if n is not None
        )
        rows.append({"table": name, "version": dt.version(), "rows": count, "location": uri})
    return rows


def run_pipeline(airflow, settings, start: str, hours: int, config, step=print) -> tuple:
    """Generate `hours` arrival hours from `start`, run reclake_hourly for each, then publish a
    snapshot of the hours that became final through reclake_training_snapshot.

    Returns the published (start, end) and the generator's report. `make demo` and the
    end-to-end test both run this.
    """
    from reclake.generator import generate
    from reclake.orchestration import label_lag_hours

    arrivals, labeled = pipeline_hours(start, hours, label_lag_hours(settings))
    report = generate(settings, arrivals[0], arrivals[-1] + HOUR, config)
    step(f"generated {report.total.lines} landing lines for {len(arrivals)} hours")
    for hour in arrivals:
        # A manual run at logical date X covers [X - 1h, X): the arrival hour X - 1h.
        airflow.dags_test("reclake_hourly", iso(hour + HOUR))
        step(f"reclake_hourly done for arrival hour {iso(hour)}")
    publish_snapshot(airflow, *labeled)
    step(f"reclake_training_snapshot done for [{iso(labeled[0])}, {iso(labeled[1])})")
    return labeled, report


def publish_snapshot(airflow, start, end, **kwargs):
    """Run reclake_training_snapshot for the hours [start, end).

    The hourly runs that made those hours final ran just before, in this process: the
    daily sensor that waits for them is marked done rather than polled.
    """
    conf = {"start": iso(start), "end": iso(end)}
    return airflow.dags_test(
        "reclake_training_snapshot",
        iso(end),
        conf=conf,
        mark_success="^wait_for_hourly_samples$",
        **kwargs,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    from reclake.cli.output import format_table
    from reclake.generator import GeneratorConfig
    from reclake.local_airflow import CommandFailed, LocalAirflow
    from reclake.orchestration import label_lag_hours

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default=DEMO_START, help="first arrival hour (UTC)")
    parser.add_argument("--hours", type=int, default=4, help="arrival hours to run")
    parser.add_argument("--events-per-hour", type=int, default=3000)
    args = parser.parse_args(argv)

    settings = load_settings()
    lag = label_lag_hours(settings)
    if args.hours <= lag:
        parser.error(f"--hours must exceed the label lag of {lag} hours")
    home = Path(os.environ.get("AIRFLOW_HOME", PROJECT_ROOT / ".airflow"))
    began = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    step(f"lake: {settings.lake_root}  airflow home: {home}")
    config = GeneratorConfig(events_per_hour=args.events_per_hour, n_users=600, n_items=300)
    try:
        airflow = LocalAirflow.create(home, settings.lake_root)
        step("airflow: metadata DB migrated, airflow_settings.yaml applied")
        run_pipeline(airflow, settings, args.start, args.hours, config, step)
    except CommandFailed as exc:
        print(f"demo: a DAG run failed\n{exc}", file=sys.stderr)
        return 1
    return _report(settings, step, format_table)


def _report(settings, step, format_table) -> int:
    from reclake.quality.results import load_result
    from reclake.reader import SnapshotDataset
    from reclake.snapshots import resolve

    snap = resolve(settings, "training_samples@latest")
    result = load_result(settings, snap.table, snap.validation_id)
    rows = sum(len(b["label"]) for b in SnapshotDataset(snap, settings=settings, batch_size=4096))
    step("read the snapshot back through the training reader")
    print()
    print(format_table(table_summary(settings), ["table", "version", "rows", "location"]))
    print()
    print(f"snapshot:    {snap.id}  (training_samples@latest)")
    print(
        f"             version {snap.version}, {snap.row_count} rows, {len(snap.files)} files, "
        f"hours [{snap.interval_start}, {snap.interval_end})"
    )
    print(f"validation:  {result.id}: {'passed' if result.success else 'FAILED'}")
    print(f"data docs:   {result.data_docs}")
    print(f"reader:      {rows} rows read into torch tensors (snapshot holds {snap.row_count})")
    print("next:        reclake snapshots list | reclake tables | make airflow (UI)")
    return 0 if rows == snap.row_count else 1


if __name__ == "__main__":
    sys.exit(main())
