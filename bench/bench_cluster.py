"""Per-core rates of every job on the local cluster (`make cluster`): the figures
docs/deploy.md sizes a real deployment by.

Generates `--hours` arrival hours of `--events-per-hour` events on the cluster's object store,
then runs each job once over all of them as a spark-submit to its spark:// master (client
deploy mode, the executors on the workers), as reclake_backfill and the snapshot DAG run
them: ingest, dims, tiles, labels, samples, validate, audit, publish, optimize, vacuum. Prints
per job the wall time, the rows it handled (from its JSON line) and rows per second per
executor core (wall time, so fixed start-up cost is included: an upper bound on cost).

    make cluster
    .venv/bin/python bench/bench_cluster.py --hours 24 --events-per-hour 20000

Prints figures only. Needs a freshly started cluster (it writes the lake from scratch).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))


def cluster_env(run: Path) -> dict[str, str]:
    """The environment `source <run>/env.sh` gives a shell."""
    out = subprocess.run(
        ["bash", "-c", f'. "{run}/env.sh" && env -0'], capture_output=True, check=True
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def submit(env: dict[str, str], job: str, args: list[str]) -> tuple[float, dict]:
    """Run one job with spark-submit on the cluster (plain Python for publish); returns its
    wall time and final JSON line."""
    from reclake.config import Settings
    from reclake.orchestration import jars_csv, last_json_line, spark_conf

    settings = Settings.from_env(env)
    if job == "publish_snapshot.py":
        cmd = [sys.executable, str(ROOT / "jobs" / job), *args]
    else:
        cmd = [
            str(ROOT / ".venv" / "bin" / "spark-submit"),
            "--master",
            settings.spark_master,
            "--deploy-mode",
            "client",
            "--driver-memory",
            settings.spark_driver_memory,
            "--jars",
            jars_csv(settings),
        ]
        for key, value in spark_conf(settings).items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [str(ROOT / "jobs" / job), *args]
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{job} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, last_json_line(proc.stdout.splitlines()) or {}


def main() -> int:
    """Generate, run every job once, print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / ".cluster"), help="the cluster's run folder")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--events-per-hour", type=int, default=20000)
    parser.add_argument("--cores", type=int, default=2, help="executor cores of the cluster")
    args = parser.parse_args()

    env = {
        **cluster_env(Path(args.run)),
        "RECLAKE_SPARK_JVM_OPTIONS": "-XX:+TieredCompilation",
        "RECLAKE_SPARK_CODEGEN": "true",
        "RECLAKE_SPARK_SHUFFLE_PARTITIONS": "4",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("RECLAKE_")})
    from reclake.config import load_settings
    from reclake.generator import GeneratorConfig, generate
    from reclake.orchestration import label_lag_hours

    settings = load_settings()
    first = datetime(2026, 11, 20, tzinfo=UTC)
    end = first + timedelta(hours=args.hours)
    lag = label_lag_hours(settings)
    config = GeneratorConfig(events_per_hour=args.events_per_hour)
    began = time.perf_counter()
    report = generate(settings, first, end, config)
    print(
        f"generated {args.hours} h x {args.events_per_hour} events in "
        f"{time.perf_counter() - began:.1f} s: {report}",
        flush=True,
    )
    span = ["--start", first.isoformat(), "--end", end.isoformat()]
    sampled = ["--start", first.isoformat(), "--end", (end - timedelta(hours=lag)).isoformat()]
    steps = [
        ("ingest_events.py", span, "input_lines"),
        ("load_dims.py", [], "rows"),
        ("build_tiles.py", span, "bronze_rows"),
        ("label_impressions.py", sampled, "rows"),
        ("build_training_samples.py", sampled, "rows"),
        ("validate.py", ["--table", "training_samples", *sampled], "rows"),
        ("audit.py", None, "sampled_rows"),
        ("publish_snapshot.py", None, "row_count"),
        ("optimize.py", [], "files_removed"),
        ("vacuum.py", [], "files_deleted"),
    ]
    results: dict[str, dict] = {}
    print(f"{'job':28} {'seconds':>8} {'rows':>10} {'rows/s/core':>12}", flush=True)
    for job, job_args, key in steps:
        if job == "audit.py":
            job_args = [
                "--table",
                "training_samples",
                "--validation-id",
                results["validate.py"]["id"],
            ]
        if job == "publish_snapshot.py":
            job_args = [
                "--table",
                "training_samples",
                "--validation-id",
                results["validate.py"]["id"],
                "--audit-id",
                results["audit.py"].get("id", ""),
                *sampled,
            ]
        seconds, result = submit(env, job, job_args)
        results[job] = result
        rows = _rows(result, key)
        rate = rows / seconds / args.cores if rows else 0.0
        print(f"{job:28} {seconds:8.1f} {rows:10} {rate:12.0f}", flush=True)
        results[job] = {**result, "_seconds": round(seconds, 1), "_rows": rows}
        print(f"  {json.dumps(result, default=str)[:600]}", flush=True)
    print(
        json.dumps({k: {"seconds": v["_seconds"], "rows": v["_rows"]} for k, v in results.items()})
    )
    return 0


def _rows(result: dict, key: str) -> int:
    """The row count a job's JSON line reports under `key` (summed over nested reports)."""
    if key in result and isinstance(result[key], int | float):
        return int(result[key])
    total = 0
    for value in result.values():
        if isinstance(value, dict):
            total += _rows(value, key)
        elif isinstance(value, list):
            total += sum(_rows(v, key) for v in value if isinstance(v, dict))
    return total


if __name__ == "__main__":
    sys.exit(main())
