"""`reclake audit REF`: recompute a seeded, stratified sample of a live snapshot's rows from
bronze and the dimensions and require exact equality (docs/quality.md).

Exit codes: 0 passed, 1 mismatches (the report is printed), 2 usage errors (unknown or
expired snapshot, a table without an audit, bad arguments, missing inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from reclake.cli.output import emit
from reclake.quality.audit_results import DEFAULT_SAMPLE_ROWS, DEFAULT_SEED

if TYPE_CHECKING:
    from reclake.quality.audit_results import AuditResult

EXIT_FAILED = 1
EXIT_USAGE = 2
# The job's final JSON line (the Airflow task's XCom).
RESULT_KEYS = ("id", "table", "version", "success", "rows_checked", "mismatched_rows")


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """--sample and --seed, shared by this sub-command and jobs/audit.py."""
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE_ROWS,
        help=f"rows to recompute (default {DEFAULT_SAMPLE_ROWS})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"draw seed (default {DEFAULT_SEED})"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `audit` sub-command."""
    p = sub.add_parser("audit", help="recompute a sample of a snapshot's rows from bronze")
    p.add_argument("ref", help="<table>@<id>, <table>@latest or <id> of a live snapshot")
    add_sample_arguments(p)
    p.add_argument("--json", action="store_true", help="print the whole audit result as JSON")
    p.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    from reclake.config import load_settings
    from reclake.quality.audit import check_auditable
    from reclake.snapshots import SnapshotExpired, SnapshotNotFound, resolve

    settings = load_settings()
    try:
        snap = resolve(settings, args.ref)
        check_auditable(snap.table, args.sample)
    except (SnapshotNotFound, SnapshotExpired, ValueError) as exc:
        return usage_error("audit", exc)
    return run_audit(
        settings,
        name="reclake audit",
        as_json=args.json,
        table_name=snap.table,
        version=snap.version,
        start=snap.interval_start,
        end=snap.interval_end,
        sample_size=args.sample,
        seed=args.seed,
        validation_id=snap.validation_id,
        snapshot_id=snap.id,
    )


def run_audit(settings, *, name: str, as_json: bool = False, **audit_args) -> int:
    """Audit a table version, print the report and a final JSON line; exit code 0 passed,
    1 mismatches, 2 usage or I/O error. No JVM."""
    from reclake.quality.audit import audit_version
    from reclake.storagefault import StorageError, describe

    try:
        result = audit_version(settings, **audit_args)
    except (KeyError, ValueError, OSError, StorageError) as exc:
        # A full disk, a denied permission or a damaged table: the line naming it.
        fault = describe(exc, settings.lake_root)
        return usage_error(name, exc if fault is None else fault)
    print_result(result, as_json)
    return 0 if result.success else EXIT_FAILED


def print_result(result: AuditResult, as_json: bool) -> None:
    """The report (or the whole result as JSON), then the one-line JSON summary."""
    from reclake.quality.audit_results import report_lines

    if as_json:
        emit(asdict(result), True)
        return
    sys.stdout.write("\n".join(report_lines(result)) + "\n")
    summary = {k: getattr(result, k) for k in RESULT_KEYS}
    summary.update(sample_size=result.sample_size, seed=result.seed)
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")


def usage_error(name: str, exc: BaseException | str) -> int:
    """One line on stderr, exit code 2."""
    # KeyError quotes its message; show it plain.
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    sys.stderr.write(f"{name}: {message}\n")
    return EXIT_USAGE
