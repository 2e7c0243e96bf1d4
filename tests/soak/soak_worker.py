"""One writer (or reader) of the concurrency soak (tests/soak/soak.py), as its own process:

    python tests/soak/soak_worker.py ROLE --run-dir DIR --seconds N [--start HOUR ...]

The lake comes from RECLAKE_LAKE_ROOT. Once set up (imports, Spark session), the worker says
it is ready (DIR/ready/ROLE) and waits for the driver's start signal (DIR/go, the common start
in epoch seconds), so that every role runs the same N seconds side by side however long its
start-up took on a loaded machine. It then loops over its role's operations through
reclake's own functions until the deadline, appending one JSON line per operation to
DIR/ROLE.jsonl ({"op", "ok", "error", "seconds", ...}) and logging to stderr, where the
driver counts the retries `reclake.maintenance.retry` logs. Roles:

- ingest: per arrival hour, generate its drops, load dims, ingest the hour (Spark);
- features: per ingested arrival hour, build its tiles, then label and sample the hour
  whose inputs that hour made final (Spark);
- publish: validate, audit and publish the hours sampled since the last snapshot;
- synthetic: rewrite training_samples with synthetic rows (delta-rs) and publish each
  version (no pipeline needed: the CI sample's publisher);
- optimize, vacuum: maintenance of every table that exists (Spark), vacuum with a short
  retention so that it really deletes during the soak;
- expire: expire training_samples snapshots beyond the newest `--keep-last` (no JVM);
- reader: epochs of the PyTorch SnapshotDataset over training_samples@latest (no JVM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SPARK_ROLES = ("ingest", "features", "publish", "optimize", "vacuum")
ROLES = (*SPARK_ROLES, "synthetic", "expire", "reader")
SAMPLES = "training_samples"
# Commits a Spark worker makes carry this in their commitInfo, so the driver can count each
# writer's commits in the tables' own logs.
USER_METADATA_PREFIX = "soak:"


# How long a ready worker waits for the driver's start signal before giving up.
START_WAIT_SECONDS = 900.0


def ready_path(run_dir: Path, role: str) -> Path:
    """The file a worker creates once it is set up and waiting for the start signal."""
    return run_dir / "ready" / role


def go_path(run_dir: Path) -> Path:
    """The driver's start signal: the common start, in epoch seconds."""
    return run_dir / "go"


class Worker:
    """A role's loop state: the deadline and the JSON-lines record of its operations."""

    def __init__(self, role: str, run_dir: Path, seconds: float) -> None:
        self.role = role
        self.run_dir = run_dir
        self.seconds = seconds
        self.until: float | None = None  # known once the driver gives the start signal
        self.out = (run_dir / f"{role}.jsonl").open("a", encoding="utf-8")

    def running(self) -> bool:
        """True until the deadline (an operation started before it runs to its end); the first
        call reports ready and waits for the common start."""
        if self.until is None:
            self.until = self._wait_for_start() + self.seconds
        return time.time() < self.until

    def _wait_for_start(self) -> float:
        ready = ready_path(self.run_dir, self.role)
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.touch()
        go, give_up = go_path(self.run_dir), time.time() + START_WAIT_SECONDS
        while time.time() < give_up:
            if go.exists():
                return float(go.read_text())
            time.sleep(0.1)
        raise TimeoutError(f"no start signal at {go} within {START_WAIT_SECONDS:g} s")

    def pause(self, seconds: float) -> None:
        """Sleep, but never past the deadline."""
        until = self.until if self.until is not None else time.time()
        time.sleep(max(0.0, min(seconds, until - time.time())))

    def op(self, name: str, work: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Run one operation, record it; returns its detail, None when it failed."""
        began = time.time()
        record: dict[str, Any] = {"op": name, "started": began}
        try:
            detail = work() or {}
        except Exception as exc:
            record.update(ok=False, error=error_line(exc))
            # The whole trace goes to the worker's log; the record keeps the one-line error.
            traceback.print_exc()
            detail = None
        else:
            record.update(ok=True, **detail)
        record["seconds"] = round(time.time() - began, 3)
        self.out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self.out.flush()
        return detail


def error_line(exc: BaseException) -> str:
    """The error as one line: its type and first message line; for an error from the JVM
    (whose Python message is only "An error occurred while calling ...") the Java
    exception's own line after it."""
    from reclake.storagefault import error_text

    lines = [line.strip().removeprefix(": ") for line in error_text(exc).splitlines()]
    lines = [line for line in lines if line]
    line = lines[0] if lines else type(exc).__name__
    if line.startswith("Py4JJavaError") and len(lines) > 1:
        line = f"{line} {lines[1]}"
    return line if len(line) <= 400 else line[:397] + "..."


def spark_session(role: str):
    """reclake's session, tagging every commit it makes with the writer's name."""
    from reclake.io import USER_METADATA_CONF
    from reclake.spark import get_spark

    spark = get_spark(f"soak-{role}")
    spark.conf.set(USER_METADATA_CONF, USER_METADATA_PREFIX + role)
    return spark


def run_ingest(w: Worker, settings, start: datetime, events_per_hour: int) -> None:
    """Generate, load dims and ingest one arrival hour after another."""
    from reclake.features.dims import load_dims
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.timeutil import HOUR, iso

    spark = spark_session(w.role)
    config = GeneratorConfig(events_per_hour=events_per_hour, n_users=400, n_items=200)
    hour = start
    while w.running():
        counts = generate(settings, hour, hour + HOUR, config).total
        expected = {
            "hour": iso(hour),
            "valid_events": counts.valid_events,
            "quarantine_lines": counts.malformed_lines + counts.bad_field_lines,
            "redelivered_before_start": counts.redelivered_before_start,
        }
        w.op("generate", lambda e=expected: e)
        if w.op("load_dims", lambda: _versions(load_dims(spark, settings))) is None:
            continue
        done = w.op(
            "ingest",
            lambda h=hour: {"hour": iso(h), **ingest_events(spark, settings, h, h + HOUR).totals()},
        )
        if done is not None:
            hour += HOUR


def _versions(results: dict) -> dict[str, Any]:
    return {"versions": {name: r.version for name, r in results.items()}}


def run_features(w: Worker, settings, start: datetime) -> None:
    """Tiles of each ingested arrival hour, then labels and samples of the hour it made final
    (what reclake_hourly runs after the ingest), one step at a time, a failed step retried."""
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.ingest import ingested_hours
    from reclake.orchestration import label_lag_hours
    from reclake.timeutil import HOUR, iso

    spark = spark_session(w.role)
    lag = label_lag_hours(settings) * HOUR
    steps = {
        "tiles": lambda a: {"rows": sum(build_tiles(spark, settings, a, a + HOUR).rows.values())},
        "labels": lambda a: {
            "rows": label_impressions(spark, settings, a - lag, a - lag + HOUR).rows_written
        },
        "samples": lambda a: {
            "rows": build_training_samples(spark, settings, a - lag, a - lag + HOUR).rows
        },
    }
    arrival, todo = start, list(steps)
    while w.running():
        if arrival not in set(ingested_hours(settings)):
            w.pause(2)
            continue
        if arrival - lag < start:
            todo = [s for s in todo if s == "tiles"]  # nothing to label before the lake starts
        if todo:
            step = todo[0]
            hour = arrival if step == "tiles" else arrival - lag
            if w.op(step, lambda s=step, a=arrival, h=hour: {"hour": iso(h), **steps[s](a)}):
                todo.pop(0)
        if not todo:
            arrival, todo = arrival + HOUR, list(steps)


def run_publish(w: Worker, settings, start: datetime) -> None:
    """Validate, audit and publish the hours sampled since the last snapshot, as soon as
    there are any (reclake_training_snapshot publishes an interval the same way)."""
    from reclake.features.samples import sampled_hours
    from reclake.quality.audit import audit_version
    from reclake.quality.validate import validate_table
    from reclake.snapshots import publish
    from reclake.timeutil import HOUR, iso

    spark = spark_session(w.role)
    begin = start  # each snapshot: the hours sampled since the previous one
    while w.running():
        hours = sampled_hours(settings, begin, begin + timedelta(days=365))
        if not hours:
            w.pause(3)
            continue
        end = max(hours) + HOUR

        def gate_and_publish(start: datetime = begin, end: datetime = end) -> dict[str, Any]:
            result = validate_table(spark, settings, SAMPLES, start=start, end=end)
            if not result.success:
                raise RuntimeError(f"validation {result.id} failed: {result.failures[:3]}")
            audit = audit_version(
                settings,
                SAMPLES,
                result.version,
                start=start,
                end=end,
                validation_id=result.id,
            )
            if not audit.success:
                raise RuntimeError(f"audit {audit.id} failed: {audit.mismatched_rows} rows")
            snap = publish(
                settings,
                SAMPLES,
                result.version,
                result.id,
                interval=(iso(start), iso(end)),
                audit_id=audit.id,
                require_audit=True,
            )
            return {"start": iso(start), "end": iso(end), **snapshot_digest(snap, settings)}

        if w.op("publish", gate_and_publish) is not None:
            begin = end


def run_synthetic(w: Worker, settings, rows: int) -> None:
    """Rewrite training_samples with new synthetic rows (delta-rs) and publish each version:
    every older version's files are then needed by its snapshot alone, so vacuum may delete
    them as soon as that snapshot expires, and must not a moment before."""
    from reclake.reader import synthetic

    offset = 0
    while w.running():

        def rewrite_and_publish(offset: int = offset) -> dict[str, Any]:
            batch = synthetic.sample_batch(rows, offset=offset)
            uri = synthetic.table_uri(settings)
            version = synthetic.write_samples(uri, batch, row_group_rows=500, mode="overwrite")
            return snapshot_digest(synthetic.publish_version(settings, version), settings)

        if w.op("publish", rewrite_and_publish) is not None:
            offset += rows
        w.pause(2)


def snapshot_digest(snap, settings) -> dict[str, Any]:
    """The snapshot's id, rows and a digest of its event ids (re-read at the end to check
    that no row of a live snapshot was lost)."""
    from reclake.snapshots import read_arrow_dataset

    ids = read_arrow_dataset(snap, settings, columns=["event_id"]).to_table().column(0)
    return {"snapshot": snap.id, "rows": len(ids), "digest": digest(ids.to_pylist())}


def digest(event_ids: list[str]) -> str:
    """Order-free digest of a set of rows' event ids."""
    return hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()[:16]


def run_maintenance(
    w: Worker, settings, operation: str, retention_minutes: float, pause: float
) -> None:
    """Optimize or vacuum every table that exists, table after table, a round every `pause`
    seconds (hourly and daily in production)."""
    from reclake.maintenance import deltalog
    from reclake.tables import TABLES

    spark = spark_session(w.role)
    work = _optimized if operation == "optimize" else _vacuumed
    while w.running():
        for name, spec in TABLES.items():
            if w.running() and deltalog.is_table(spec.uri(settings)):
                w.op(
                    f"{operation} {name}",
                    lambda n=name: work(spark, settings, n, retention_minutes),
                )
        w.pause(pause)


def _optimized(spark, settings, name: str, _retention_minutes: float) -> dict[str, Any]:
    from reclake.maintenance.optimize import optimize_table

    report = optimize_table(spark, settings, name)
    return {"version": report.version_produced, "conflicts": report.conflicts_retried}


def _vacuumed(spark, settings, name: str, retention_minutes: float) -> dict[str, Any]:
    from reclake.maintenance.vacuum import vacuum_table

    report = vacuum_table(spark, settings, name, retention_hours=retention_minutes / 60)
    return {"deleted": report.deleted_files, "kept_snapshots": report.kept_snapshots}


def run_expire(w: Worker, settings, keep_last: int) -> None:
    """Expire training_samples snapshots beyond the newest `keep_last` (latest never)."""
    from reclake.snapshots import expire

    while w.running():
        w.op(
            "expire",
            lambda: {"expired": [s.id for s in expire(settings, SAMPLES, keep_last=keep_last)]},
        )
        w.pause(5)


def run_reader(w: Worker, settings) -> None:
    """Epochs over training_samples@latest; a failed epoch records whether its snapshot was
    still live (a bug) or had expired meanwhile (the documented end of a snapshot)."""
    from reclake.reader import SnapshotDataset
    from reclake.snapshots import SnapshotNotFound, resolve

    epoch = 0
    while w.running():
        try:
            snap = resolve(settings, f"{SAMPLES}@latest")
        except SnapshotNotFound:
            w.pause(2)
            continue
        epoch += 1

        def read_epoch(snap=snap, epoch: int = epoch) -> dict[str, Any]:
            rows = sum(
                len(b["label"]) for b in SnapshotDataset(snap, settings=settings, seed=epoch)
            )
            if rows != snap.row_count:
                raise RuntimeError(
                    f"{snap.id}: read {rows} rows, its manifest holds {snap.row_count}"
                )
            return {"snapshot": snap.id, "rows": rows}

        ok = w.op("epoch", read_epoch) is not None
        if not ok:
            failed_at = time.time()
            status = {"op": "epoch-status", "snapshot": snap.id, "failed_at": failed_at}
            status["live"] = live_at(settings, snap.id, failed_at)
            w.out.write(json.dumps(status) + "\n")
            w.out.flush()
        w.pause(1)  # a training step between epochs, not a busy loop on the two cores


def live_at(settings, snapshot_id: str, moment: float) -> bool:
    """Whether the snapshot was live at `moment` (epoch seconds): not expired, or expired
    later. Vacuum may delete its files only after the expiry's commit, so a read that
    failed while it was live is a bug; one that failed after is the snapshot's end."""
    from reclake.snapshots.registry import load_state
    from reclake.timeutil import parse_utc

    expired = load_state(settings).expired_at.get(snapshot_id)
    return expired is None or parse_utc(expired).timestamp() > moment


def main(argv: list[str] | None = None) -> int:
    """Run one role until the deadline; returns the exit code (0 unless the loop itself broke)."""
    from reclake.config import load_settings
    from reclake.timeutil import parse_utc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument(
        "--seconds", type=float, required=True, help="how long to run after the common start"
    )
    parser.add_argument("--start", type=parse_utc, default=parse_utc("2026-11-20T00:00Z"))
    parser.add_argument("--events-per-hour", type=int, default=3000)
    parser.add_argument("--synthetic-rows", type=int, default=2000)
    parser.add_argument("--retention-minutes", type=float, default=1.0)
    parser.add_argument("--keep-last", type=int, default=1)
    parser.add_argument("--maintenance-pause", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    settings = load_settings()
    w = Worker(args.role, args.run_dir, args.seconds)
    if args.role == "ingest":
        run_ingest(w, settings, args.start, args.events_per_hour)
    elif args.role == "features":
        run_features(w, settings, args.start)
    elif args.role == "publish":
        run_publish(w, settings, args.start)
    elif args.role == "synthetic":
        run_synthetic(w, settings, args.synthetic_rows)
    elif args.role in ("optimize", "vacuum"):
        run_maintenance(w, settings, args.role, args.retention_minutes, args.maintenance_pause)
    elif args.role == "expire":
        run_expire(w, settings, args.keep_last)
    else:
        run_reader(w, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
