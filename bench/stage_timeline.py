"""Print a Spark event log as a stage timeline: start, idle gap before it, duration, tasks,
and the job description each stage ran under.

The gaps are driver time (planning, Delta log reads, Python); the descriptions tell which
reclake call a stage belongs to when the caller sets `spark.job.description` around its
calls (Delta prefixes its own jobs with "Delta: "). Record a log with:

  PYSPARK_SUBMIT_ARGS="--conf spark.eventLog.enabled=true \\
    --conf spark.eventLog.dir=file:///tmp/ev --conf spark.eventLog.compress=false pyspark-shell"

Usage: .venv/bin/python bench/stage_timeline.py LOG [--since EPOCH_SECONDS]
LOG is an event log file, or a folder: its newest event log (recursively) is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """One completed stage: times in epoch milliseconds."""

    start: int
    end: int
    stage_id: int
    tasks: int
    name: str
    job: str


def read_stages(lines) -> list[Stage]:
    """Completed stages of an event log (one JSON event per line), by start time."""
    job_of: dict[int, str] = {}
    stages: list[Stage] = []
    for line in lines:
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            description = (event.get("Properties") or {}).get("spark.job.description", "")
            for stage_id in event["Stage IDs"]:
                job_of[stage_id] = description
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if "Submission Time" not in info:  # skipped stage: never ran
                continue
            stages.append(
                Stage(
                    info["Submission Time"],
                    info["Completion Time"],
                    info["Stage ID"],
                    info["Number of Tasks"],
                    info["Stage Name"],
                    job_of.get(info["Stage ID"], ""),
                )
            )
    return sorted(stages, key=lambda s: s.start)


def timeline(stages: list[Stage]) -> list[str]:
    """One line per stage (seconds since the first), then the span from first to last."""
    if not stages:
        return ["no completed stages"]
    origin = busy_until = stages[0].start
    out = []
    for s in stages:
        gap = max(0, s.start - busy_until) / 1000
        out.append(
            f"{(s.start - origin) / 1000:8.1f} +{gap:5.1f} {(s.end - s.start) / 1000:7.1f}s "
            f"tasks={s.tasks:<5d} stage {s.stage_id:<5d} {s.name[:40]} | {s.job}"
        )
        busy_until = max(busy_until, s.end)
    out.append(f"span {(busy_until - origin) / 1000:.1f} s over {len(stages)} stages")
    return out


def log_file(path: Path) -> Path:
    """The event log a path names: the file itself, or a folder's newest log file (rolling
    logs keep events in `events_*` files beside an `appstatus_*` marker)."""
    if not path.is_dir():
        return path
    logs = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith("appstatus_")]
    if not logs:
        raise FileNotFoundError(f"no event log under {path}")
    return max(logs, key=lambda p: p.stat().st_mtime)


def main() -> int:
    """Print the timeline of the given event log."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument(
        "--since", type=float, default=0.0, help="epoch seconds; earlier stages are left out"
    )
    args = parser.parse_args()
    with log_file(args.log).open() as lines:
        stages = [s for s in read_stages(lines) if s.start >= args.since * 1000]
    print("\n".join(timeline(stages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
