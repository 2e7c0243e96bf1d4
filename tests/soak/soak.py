"""`make soak MINUTES=N`: writers, maintenance and a training reader at once on one lake.

    python tests/soak/soak.py --minutes 10 [--writers ingest,features,...] [--dir DIR] [--json]

Each role of tests/soak/soak_worker.py runs as its own OS process for N minutes: the hourly
path (ingest: generate + dims + ingest of one arrival hour after another; features: tiles,
labels and samples of the hours that became final), publish (validate, audit, publish),
optimize, vacuum (short retention), snapshot expire and a reader (PyTorch SnapshotDataset
epochs over training_samples@latest). Then it prints, per writer, the operations attempted,
committed, retried (Delta conflicts retried by reclake.maintenance.retry, counted from the
warning it logs) and failed (each with its one-line error), the commits each writer left in
the tables' logs, the rows lost (bronze and quarantine against what the generator wrote,
samples against what the sample builds wrote, every live snapshot re-read against what was
read right after its publish) and the epochs that failed on a live snapshot. Exits 1 when
anything failed or was lost.

The CI sample (tests/soak/test_soak.py) runs `--writers synthetic,optimize,vacuum,expire,reader`:
a delta-rs publisher of synthetic samples instead of the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "include"))

import soak_worker  # noqa: E402

from reclake.maintenance.retry import RETRY_LOG_MARKER  # noqa: E402

FULL = ("ingest", "features", "publish", "optimize", "vacuum", "expire", "reader")
# The CI sample's writers: no pipeline, so a snapshot is published within seconds.
SAMPLE = ("synthetic", "optimize", "vacuum", "expire", "reader")
WRITERS = ("ingest", "features", "publish", "synthetic")
START = "2026-11-20T00:00Z"


@dataclass
class WriterFigures:
    """What one role did: operations attempted, committed, retried and failed."""

    role: str
    attempted: int = 0
    committed: int = 0
    retried: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)
    log_commits: int = 0
    exit_code: int | None = None

    def row(self) -> dict[str, Any]:
        """The figures as one table row."""
        return {
            "writer": self.role,
            "attempted": self.attempted,
            "committed": self.committed,
            "retried": self.retried,
            "failed": self.failed,
            "commits_in_log": self.log_commits,
            "exit": self.exit_code,
        }


def read_records(path: Path) -> list[dict[str, Any]]:
    """A worker's JSON-lines records (none when it never wrote one)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_retries(log_text: str) -> int:
    """Conflicts retried, from the warnings reclake.maintenance.retry logs before each retry."""
    return sum(1 for line in log_text.splitlines() if RETRY_LOG_MARKER in line)


def writer_figures(role: str, records: Iterable[dict[str, Any]], log_text: str) -> WriterFigures:
    """Tally a role's operations (its bookkeeping lines, such as `generate`, do not count)."""
    figures = WriterFigures(role, retried=count_retries(log_text))
    for r in records:
        if r["op"] in ("generate", "epoch-status"):
            continue
        figures.attempted += 1
        if r["ok"]:
            figures.committed += 1
        else:
            figures.failed += 1
            figures.errors[f"{r['op'].split()[0]}: {r.get('error') or '(no error text)'}"] += 1
    return figures


def expected_ingest(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per ingested arrival hour, the bronze and quarantine rows the generator's drop makes.

    Each hour is generated on its own, so a redelivered copy of an event first delivered in
    an earlier hour counts as valid there (redelivered_before_start); the ingest, which holds
    that earlier hour, drops it as a duplicate. The soak's first hour has no earlier one
    (hours are spelt alike, so the first in text order is the first in time).
    """
    generated: dict[str, dict[str, int]] = {}
    ingested = set()
    first = min((r["hour"] for r in records if r["op"] == "generate"), default=None)
    for r in records:
        if r["op"] == "generate":
            before = 0 if r["hour"] == first else r["redelivered_before_start"]
            generated[r["hour"]] = {
                "bronze": r["valid_events"] - before,
                "quarantine": r["quarantine_lines"],
            }
        elif r["op"] == "ingest" and r["ok"]:
            ingested.add(r["hour"])
    return {hour: generated[hour] for hour in sorted(ingested)}


def lost_and_extra(expected: dict[str, int], found: dict[str, int]) -> tuple[int, int]:
    """Rows missing and rows beyond expectation, summed over keys (hours)."""
    lost = sum(max(0, n - found.get(k, 0)) for k, n in expected.items())
    extra = sum(max(0, found.get(k, 0) - expected.get(k, 0)) for k in found if k in expected)
    return lost, extra


def rows_per_hour(settings, table: str, column: str) -> dict[str, int]:
    """A table's current rows per hour of `column`, read JVM-free (delta-rs)."""
    import pyarrow.compute as pc

    from reclake.maintenance import deltalog
    from reclake.snapshots.deltars import open_table
    from reclake.tables import table as table_spec
    from reclake.timeutil import iso

    uri = table_spec(table).uri(settings)
    if not deltalog.is_table(uri):
        return {}
    hours = open_table(uri).to_pyarrow_table(columns=[column]).column(0)
    counts = pc.value_counts(hours).to_pylist()
    return {iso(c["values"]): c["counts"] for c in counts}


def reconcile(settings, run_dir: Path, roles: tuple[str, ...]) -> dict[str, Any]:
    """Rows lost and extra per check, and live snapshots that failed their re-read."""
    from reclake.snapshots import list_snapshots

    out: dict[str, Any] = {}
    if "ingest" in roles:
        expected = expected_ingest(read_records(run_dir / "ingest.jsonl"))
        for name, table in (("bronze", "events"), ("quarantine", "quarantine_events")):
            want = {h: e[name] for h, e in expected.items()}
            out[name] = lost_and_extra(want, rows_per_hour(settings, table, "arrival_hour"))
        out["hours_ingested"] = len(expected)
    if "features" in roles:
        built = {
            r["hour"]: r["rows"]
            for r in read_records(run_dir / "features.jsonl")
            if r["op"] == "samples" and r["ok"]
        }
        out["samples"] = lost_and_extra(
            built, rows_per_hour(settings, soak_worker.SAMPLES, "event_hour")
        )
        out["hours_sampled"] = len(built)
    published = [
        r
        for role in ("publish", "synthetic")
        for r in read_records(run_dir / f"{role}.jsonl")
        if r["op"] == "publish" and r["ok"]
    ]
    live = {s.id: s for s in list_snapshots(settings, soak_worker.SAMPLES)}
    lost = extra = failed = 0
    checked = set()
    for r in published:
        if r["snapshot"] not in live or r["snapshot"] in checked:
            continue
        checked.add(r["snapshot"])
        try:
            again = soak_worker.snapshot_digest(live[r["snapshot"]], settings)
        except Exception as exc:
            failed += 1
            out.setdefault("reread_errors", []).append(soak_worker.error_line(exc))
            continue
        lost += max(0, r["rows"] - again["rows"])
        extra += max(0, again["rows"] - r["rows"])
        if again["digest"] != r["digest"] and again["rows"] == r["rows"]:
            lost += 1  # same count, other rows: at least one row lost (and one foreign)
    out["snapshots"] = (lost, extra)
    out["snapshots_published"] = len({r["snapshot"] for r in published})
    out["snapshots_reread"] = len(checked)
    out["live_reread_failed"] = failed
    return out


def reader_figures(run_dir: Path) -> dict[str, int]:
    """Epochs read, and failed ones split by whether their snapshot was still live."""
    records = read_records(run_dir / "reader.jsonl")
    status = [r for r in records if r["op"] == "epoch-status"]
    return {
        "epochs": sum(1 for r in records if r["op"] == "epoch"),
        "epochs_ok": sum(1 for r in records if r["op"] == "epoch" and r["ok"]),
        "failed_on_live": sum(1 for r in status if r["live"]),
        "failed_on_expired": sum(1 for r in status if not r["live"]),
        "snapshots_read": len({r["snapshot"] for r in records if r.get("snapshot")}),
    }


def log_commits(settings) -> Counter:
    """Commits per soak writer in every table's Delta log (by the commitInfo tag)."""
    from reclake.maintenance import deltalog
    from reclake.tables import TABLES

    found: Counter = Counter()
    for spec in TABLES.values():
        uri = spec.uri(settings)
        if not deltalog.is_table(uri):
            continue
        for commit in deltalog.commits_after(uri, -1):
            # The session's tag comes first; replace_where adds its own write tag after it.
            tag = (str(commit.info.get("userMetadata") or "").split() or [""])[0]
            if tag.startswith(soak_worker.USER_METADATA_PREFIX):
                found[tag.removeprefix(soak_worker.USER_METADATA_PREFIX)] += 1
    return found


def soak_suites(folder: Path) -> Path:
    """The expectation suites with training_samples' drift check off, in `folder`.

    The soak's lake starts empty, so the 24 h and 7 d window features of its first hours
    grow from zero: each publish drifted from the previous snapshot's baseline (user_plays_24h
    PSI 0.44), and the gate refused it. Every other expectation, check and the audit stay on.
    """
    suites = folder / "expectations"
    shutil.copytree(ROOT / "include" / "expectations", suites, dirs_exist_ok=True)
    path = suites / f"{soak_worker.SAMPLES}.json"
    suite = json.loads(path.read_text())
    suite.get("checks", {}).pop("distribution_drift", None)
    path.write_text(json.dumps(suite, indent=2))
    return suites


def worker_env(lake: Path, suites: Path) -> dict[str, str]:
    """The workers' environment: the soak's lake and suites, small local Spark sessions, and
    no reader cache (epochs read the snapshot's Parquet files, which vacuum must keep)."""
    env = dict(os.environ)
    env.update(
        RECLAKE_LAKE_ROOT=str(lake),
        RECLAKE_EXPECTATIONS_DIR=str(suites),
        RECLAKE_SPARK_MASTER="local[2]",
        RECLAKE_SPARK_DRIVER_MEMORY="1g",
        RECLAKE_SPARK_SHUFFLE_PARTITIONS="2",
        RECLAKE_READER_CACHE="false",
        PYTHONPATH=os.pathsep.join([str(ROOT / "include"), env.get("PYTHONPATH", "")]),
        SPARK_LOCAL_IP=env.get("SPARK_LOCAL_IP", "127.0.0.1"),
    )
    return env


def run_workers(
    roles: tuple[str, ...],
    run_dir: Path,
    lake: Path,
    times: tuple[float, float, float],
    args: list,
) -> dict[str, int | None]:
    """Start every role at once and give the start signal when all are set up (or `grace`
    seconds have passed); `times` = (minutes, tail, grace): from that common start the writers
    stop starting operations after `minutes`, the others `tail` seconds later, and a worker
    still running `grace` seconds after that is killed (its exit code is None)."""
    minutes, tail, grace = times
    procs = {}
    for role in roles:
        # Maintenance, expire and the reader go on longer, so that the writers' last snapshot
        # is also expired, vacuumed and read.
        seconds = minutes * 60 + (0 if role in WRITERS else tail)
        log = (run_dir / f"{role}.log").open("w")
        command = [sys.executable, str(HERE / "soak_worker.py"), role, "--run-dir", str(run_dir)]
        procs[role] = subprocess.Popen(
            [*command, "--seconds", str(seconds), "--start", START, *args],
            env=worker_env(lake, soak_suites(run_dir)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    start = start_when_ready(procs, run_dir, grace)
    codes: dict[str, int | None] = {}
    for role, proc in procs.items():
        try:
            codes[role] = proc.wait(
                timeout=max(1.0, start + minutes * 60 + tail + grace - time.time())
            )
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            codes[role] = None
    return codes


def start_when_ready(procs: dict[str, subprocess.Popen], run_dir: Path, wait: float) -> float:
    """Wait until every worker still alive is set up (at most `wait` seconds), then write the
    common start time where they look for it; returns it. On a loaded machine the Spark
    workers' start-up alone can take longer than a short soak."""
    give_up = time.time() + wait
    while time.time() < give_up:
        waiting = [
            role
            for role, proc in procs.items()
            if proc.poll() is None and not soak_worker.ready_path(run_dir, role).exists()
        ]
        if not waiting:
            break
        time.sleep(0.2)
    start = time.time()
    go = soak_worker.go_path(run_dir)
    staged = go.with_suffix(".tmp")
    staged.write_text(repr(start))
    staged.replace(go)  # a worker never reads a half-written time
    return start


def summarize(
    roles: tuple[str, ...], run_dir: Path, codes: dict[str, int | None], settings
) -> dict[str, Any]:
    """Every figure of the run, as one JSON-able document."""
    commits = log_commits(settings)
    writers = []
    for role in roles:
        log_path = run_dir / f"{role}.log"
        f = writer_figures(
            role,
            read_records(run_dir / f"{role}.jsonl"),
            log_path.read_text(errors="replace") if log_path.exists() else "",
        )
        f.log_commits, f.exit_code = commits.get(role, 0), codes.get(role)
        writers.append({**f.row(), "errors": dict(f.errors)})
    rows = reconcile(settings, run_dir, roles)
    reader = reader_figures(run_dir) if "reader" in roles else {}
    lost = sum(v[0] for v in rows.values() if isinstance(v, tuple))
    extra = sum(v[1] for v in rows.values() if isinstance(v, tuple))
    live_failures = reader.get("failed_on_live", 0) + rows["live_reread_failed"]
    ok = (
        lost == 0
        and extra == 0
        and live_failures == 0
        and all(w["failed"] == 0 and w["exit"] == 0 for w in writers)
    )
    return {
        "ok": ok,
        "writers": writers,
        "rows": rows,
        "rows_lost": lost,
        "rows_extra": extra,
        "reader": reader,
        "live_snapshot_reads_failed": live_failures,
    }


def render(summary: dict[str, Any], minutes: float) -> str:
    """The printed report: the writers' table, their errors, rows lost, live reads."""
    from reclake.cli.output import format_table

    columns = ("writer", "attempted", "committed", "retried", "failed", "commits_in_log", "exit")
    lines = [f"soak: {minutes:g} min", format_table(summary["writers"], columns)]
    for w in summary["writers"]:
        for error, n in w["errors"].items():
            lines.append(f"  {w['writer']} failed {n}x: {error}")
    rows = summary["rows"]
    for name in ("bronze", "quarantine", "samples", "snapshots"):
        if name in rows:
            lost, extra = rows[name]
            lines.append(f"rows lost, {name}: {lost} (extra: {extra})")
    context = {k: v for k, v in rows.items() if not isinstance(v, tuple | list)}
    lines.append("checked: " + ", ".join(f"{k} {v}" for k, v in context.items()))
    if summary["reader"]:
        r = summary["reader"]
        lines.append(
            f"reader: {r['epochs']} epochs over {r['snapshots_read']} snapshots, "
            f"{r['epochs_ok']} ok, {r['failed_on_expired']} ended by an expired snapshot"
        )
    lines.append(f"live-snapshot reads failed: {summary['live_snapshot_reads_failed']}")
    lines.append("soak: " + ("OK" if summary["ok"] else "FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; returns 0 when nothing failed and no row was lost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--writers", default=",".join(FULL), help="roles, comma-separated")
    parser.add_argument("--dir", type=Path, help="where the lake and the logs go (default: new)")
    parser.add_argument("--grace", type=float, default=300.0, help="seconds for work in flight")
    parser.add_argument(
        "--tail", type=float, default=60.0, help="seconds the non-writers go on after the writers"
    )
    parser.add_argument("--events-per-hour", type=int, default=3000)
    parser.add_argument("--retention-minutes", type=float, default=5.0)
    parser.add_argument("--keep-last", type=int, default=1)
    parser.add_argument(
        "--maintenance-pause", type=float, default=10.0, help="seconds between rounds"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    roles = tuple(r for r in args.writers.split(",") if r)
    unknown = sorted(set(roles) - set(soak_worker.ROLES))
    if unknown:
        parser.error(f"unknown writers {unknown}; known: {', '.join(soak_worker.ROLES)}")
    base = args.dir or Path(tempfile.mkdtemp(prefix="reclake-soak-"))
    run_dir, lake = base / "run", base / "lake"
    run_dir.mkdir(parents=True, exist_ok=True)
    lake.mkdir(parents=True, exist_ok=True)
    print(f"soak: {', '.join(roles)} for {args.minutes:g} min; logs in {run_dir}", flush=True)
    worker_args = ["--events-per-hour", str(args.events_per_hour)]
    worker_args += ["--retention-minutes", str(args.retention_minutes)]
    worker_args += ["--keep-last", str(args.keep_last)]
    worker_args += ["--maintenance-pause", str(args.maintenance_pause)]
    times = (args.minutes, args.tail, args.grace)
    codes = run_workers(roles, run_dir, lake, times, worker_args)

    from reclake.config import Settings

    summary = summarize(roles, run_dir, codes, Settings(lake_root=lake.as_uri()))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, default=str) if args.json else render(summary, args.minutes))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
