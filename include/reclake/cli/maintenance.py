"""`reclake tables | history | optimize | vacuum`: table health and maintenance runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict

from reclake.cli.output import add_json_flag, emit, guard
from reclake.config import load_settings

TABLE_COLUMNS = [
    "table",
    "latest_version",
    "rows",
    "files",
    "total_bytes",
    "avg_file_bytes",
    "small_file_ratio",
    "last_optimize",
    "last_vacuum",
    "live_snapshots",
]
HISTORY_COLUMNS = ["version", "timestamp", "operation", "metrics"]
OPTIMIZE_COLUMNS = [
    "table",
    "partitions",
    "files_before",
    "files_after",
    "bytes_before",
    "bytes_after",
    "version_produced",
    "conflicts_retried",
    "skipped_reason",
]
VACUUM_COLUMNS = [
    "table",
    "dry_run",
    "files_on_storage",
    "deleted_files",
    "deleted_bytes",
    "kept_current",
    "kept_window",
    "kept_snapshots",
    "kept_recent",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tables`, `history`, `optimize` and `vacuum` sub-commands."""
    p = sub.add_parser(
        "tables", help="table health: versions, rows, files, maintenance, freshness, quarantine"
    )
    add_json_flag(p).set_defaults(func=_guard(_tables))

    p = sub.add_parser("history", help="a table's Delta history with metrics")
    p.add_argument("table")
    p.add_argument("--limit", type=int, default=20, help="newest N commits (default 20)")
    add_json_flag(p).set_defaults(func=_guard(_history))

    p = sub.add_parser("optimize", help="compact + Z-order recently written partitions")
    p.add_argument("--table", help="only this table (default: every table that exists)")
    add_json_flag(p).set_defaults(func=_guard(_optimize))

    p = sub.add_parser("vacuum", help="snapshot-aware vacuum of unreferenced data files")
    p.add_argument("--table", help="only this table (default: every table that exists)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.add_argument("--retention-hours", type=float, help="default: the table's policy")
    add_json_flag(p).set_defaults(func=_guard(_vacuum))


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Unknown or missing tables print an error and exit 1."""
    return guard(command, (FileNotFoundError, KeyError))


def _tables(args: argparse.Namespace) -> int:
    from reclake.maintenance.health import all_health, freshness, quarantine_counts

    settings = load_settings()
    rows = [asdict(h) for h in all_health(settings)]
    fresh, quarantined = freshness(settings), quarantine_counts(settings)
    if args.json:
        emit({"tables": rows, "freshness": fresh, "quarantine": quarantined}, True)
        return 0
    emit([r for r in rows if r["exists"]] or rows, False, TABLE_COLUMNS)
    sys.stdout.write("\nnewest hour: " + ", ".join(f"{k} {v or '-'}" for k, v in fresh.items()))
    sys.stdout.write("\n")
    for name, reasons in quarantined.items():
        counts = ", ".join(f"{reason} {n}" for reason, n in reasons.items()) or "none"
        sys.stdout.write(f"{name} by reason: {counts}\n")
    return 0


def _history(args: argparse.Namespace) -> int:
    from reclake.maintenance.health import history
    from reclake.tables import table

    rows = history(load_settings(), table(args.table).name, args.limit)
    if not args.json:
        rows = [{**r, "metrics": _inline(r["metrics"])} for r in rows]
    emit(rows, args.json, HISTORY_COLUMNS)
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from reclake.maintenance.optimize import optimize_all, optimize_table
    from reclake.spark import get_spark

    settings = load_settings()
    spark = get_spark("reclake-optimize", settings)
    if args.table:
        reports = [optimize_table(spark, settings, _name(args.table))]
    else:
        reports = optimize_all(spark, settings)
    rows = [r.summary() for r in reports]
    if not args.json:
        rows = [{**r, "partitions": len(r["partitions"])} for r in rows]
    emit(rows, args.json, OPTIMIZE_COLUMNS)
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    from reclake.maintenance.vacuum import vacuum_all, vacuum_table
    from reclake.spark import get_spark

    settings = load_settings()
    spark = get_spark("reclake-vacuum", settings)
    if args.table:
        reports = [
            vacuum_table(spark, settings, _name(args.table), args.dry_run, args.retention_hours)
        ]
    else:
        reports = vacuum_all(spark, settings, args.dry_run, args.retention_hours)
    if args.json:
        emit([asdict(r) for r in reports], True)
        return 0
    emit([r.summary() for r in reports], False, VACUUM_COLUMNS)
    for r in reports:
        for path in r.deleted:
            verb = "would delete" if r.dry_run else "deleted"
            sys.stdout.write(f"{verb} {r.table}/{path}\n")
    return 0


def _name(table: str) -> str:
    from reclake.tables import table as table_spec

    return table_spec(table).name


def _inline(metrics: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in metrics.items())
