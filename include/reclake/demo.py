"""`make demo`: the whole pipeline through real Airflow DAG runs on generated data.

Generates a day of interaction logs plus the next hour into the lake's landing area, loads the
day through `reclake_backfill` (each stage one set-based job over the whole day), runs
`reclake_hourly` for the hour after it (ingest, dims, tiles, labels, samples, validation: it
continues from the backfill's window checkpoint), then `reclake_training_snapshot` for every
hour that became final (validate, audit, publish, announce), reads the published snapshot back
through the training reader and prints a summary. Re-running it is safe: every step is
idempotent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reclake.config import PROJECT_ROOT, load_settings
from reclake.timeutil import HOUR, floor_hour, iso, parse_utc


def pipeline_hours(start: str, hours: int, lag: int) -> tuple[list, tuple]:
    """Arrival hours to run, and the [start, end) of the hours that end up labeled."""
    first = parse_utc(start)
    arrivals = [first + i * HOUR for i in range(hours)]
    labeled = (first, first + timedelta(hours=max(hours - lag, 0)))
    return arrivals, labeled


def demo_start(hours: int) -> str:
    """First arrival hour of a demo of `hours` arrival hours ending at the current hour: its
    hourly run is then dated about now (`dags test` shows a run's duration from its logical
    date), and an unpaused reclake_hourly continues right after it."""
    return iso(floor_hour(datetime.now(UTC)) - hours * HOUR)


def backfill(airflow, start, end, chunk_hours: int = 24, **kwargs):
    """Run reclake_backfill over arrival hours [start, end) (every stage, no publish)."""
    conf = {"start": iso(start), "end": iso(end), "chunk_hours": chunk_hours}
    # Params drive the run, so it is dated now (its UI duration is then its real one).
    return airflow.dags_test("reclake_backfill", None, conf=conf, **kwargs)


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


def run_pipeline(
    airflow, settings, start: str, hours: int, config, step=print, history_hours: int = 0
) -> tuple:
    """Generate `history_hours + hours` arrival hours from `start`; load the first
    `history_hours` through reclake_backfill, run reclake_hourly for each later hour, then
    publish a snapshot of every hour that became final through reclake_training_snapshot.

    Returns the published (start, end) and the generator's report. `make demo` and the
    end-to-end test both run this.
    """
    from reclake.generator import generate
    from reclake.orchestration import label_lag_hours

    arrivals, labeled = pipeline_hours(start, history_hours + hours, label_lag_hours(settings))
    report = generate(settings, arrivals[0], arrivals[-1] + HOUR, config)
    step(f"generated {report.total.lines} landing lines for {len(arrivals)} hours")
    if history_hours:
        history_end = arrivals[0] + history_hours * HOUR
        backfill(airflow, arrivals[0], history_end)
        step(f"reclake_backfill done for arrival hours [{iso(arrivals[0])}, {iso(history_end)})")
    for hour in arrivals[history_hours:]:
        # A manual run at logical date X covers [X - 1h, X): the arrival hour X - 1h.
        airflow.dags_test("reclake_hourly", iso(hour + HOUR))
        step(f"reclake_hourly done for arrival hour {iso(hour)}")
    publish_snapshot(airflow, *labeled)
    step(f"reclake_training_snapshot done for [{iso(labeled[0])}, {iso(labeled[1])})")
    return labeled, report


def publish_snapshot(airflow, start, end, **kwargs):
    """Run reclake_training_snapshot for the hours [start, end); its sensor finds their
    samples in reclake's sample log, whichever runs built them."""
    conf = {"start": iso(start), "end": iso(end)}
    return airflow.dags_test("reclake_training_snapshot", None, conf=conf, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    from reclake.cli.output import format_table
    from reclake.generator import GeneratorConfig
    from reclake.local_airflow import CommandFailed, LocalAirflow
    from reclake.orchestration import label_lag_hours

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start",
        default=None,
        help="first arrival hour (UTC; default: the demo's last hour is the one that just ended)",
    )
    parser.add_argument(
        "--history-hours", type=int, default=24, help="arrival hours loaded by reclake_backfill"
    )
    parser.add_argument(
        "--hours", type=int, default=1, help="arrival hours after them run by reclake_hourly"
    )
    parser.add_argument("--events-per-hour", type=int, default=3000)
    args = parser.parse_args(argv)

    settings = load_settings()
    lag = label_lag_hours(settings)
    if args.history_hours + args.hours <= lag:
        parser.error(f"--history-hours + --hours must exceed the label lag of {lag} hours")
    if 0 < args.history_hours <= lag:
        parser.error(f"--history-hours must exceed the label lag of {lag} hours (or be 0)")
    home = Path(os.environ.get("AIRFLOW_HOME", PROJECT_ROOT / ".airflow"))
    began = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    step(f"lake: {settings.lake_root}  airflow home: {home}")
    config = GeneratorConfig(events_per_hour=args.events_per_hour, n_users=600, n_items=300)
    try:
        airflow = LocalAirflow.create(home, settings.lake_root)
        step("airflow: metadata DB migrated, airflow_settings.yaml applied")
        start = args.start or demo_start(args.history_hours + args.hours)
        run_pipeline(airflow, settings, start, args.hours, config, step, args.history_hours)
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
    # One pass: nothing for the snapshot cache to speed up.
    reader = SnapshotDataset(snap, settings=settings, batch_size=4096, cache=False)
    rows = sum(len(b["label"]) for b in reader)
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
