"""`reclake ingest run|log`: ingest arrival hours, or show what the ingest log holds."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from reclake.cli.output import emit
from reclake.config import load_settings
from reclake.ingest.log import COUNT_FIELDS
from reclake.timeutil import parse_utc

LOG_COLUMNS = ("arrival_hour", *COUNT_FIELDS, "bronze_version", "duration_s")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ingest` sub-command with its `run` and `log` actions."""
    p = sub.add_parser("ingest", help="landing drops -> bronze/events + quarantine/events")
    actions = p.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="ingest the arrival hours in [start, end)")
    run.add_argument("--start", required=True, type=parse_utc, help="first arrival hour (UTC)")
    run.add_argument("--end", required=True, type=parse_utc, help="end, exclusive (UTC)")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.set_defaults(func=_run)
    log = actions.add_parser("log", help="list ingested arrival hours with their counts")
    log.add_argument(
        "--days", type=float, help="only the hours within D days before the newest ingested one"
    )
    log.add_argument("--json", action="store_true", help="machine-readable output")
    log.set_defaults(func=_log)


def _run(args: argparse.Namespace) -> int:
    from reclake.ingest import IngestError, ingest_events
    from reclake.spark import get_spark

    settings = load_settings()
    try:
        report = ingest_events(
            get_spark("reclake-ingest", settings), settings, args.start, args.end
        )
    except IngestError as exc:
        print(f"reclake ingest: {exc}", file=sys.stderr)
        return 1
    rows = [asdict(h) for h in report.hours]
    emit(rows, args.json, LOG_COLUMNS)
    return 0


def _log(args: argparse.Namespace) -> int:
    from reclake.ingest import load_ingest_logs

    rows = [asdict(h) for h in load_ingest_logs(load_settings(), args.days)]
    emit(rows, args.json, LOG_COLUMNS)
    return 0
