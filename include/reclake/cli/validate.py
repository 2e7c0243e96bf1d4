"""`reclake validate TABLE`: run the quality gate on a table version, print what failed."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from reclake.cli.output import emit
from reclake.timeutil import parse_utc

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate's arguments, shared by this sub-command and jobs/validate.py."""
    parser.add_argument("--start", type=parse_utc, help="data interval start (UTC, inclusive)")
    parser.add_argument("--end", type=parse_utc, help="data interval end (UTC, exclusive)")
    parser.add_argument("--version", type=int, help="table version (default: latest)")
    parser.add_argument(
        "--baseline",
        help="validation result id to compare distributions with "
        "(default: the result of the table's latest snapshot)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `validate` sub-command."""
    p = sub.add_parser("validate", help="validate a table with its Great Expectations suite")
    p.add_argument("table", help="logical table name, e.g. training_samples")
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    return run_gate(args, app_name="reclake-validate", as_json=args.json)


def run_gate(args: argparse.Namespace, *, app_name: str, as_json: bool = False) -> int:
    """Validate args.table; exit code 0 passed, 1 gate failed, 2 usage or I/O error."""
    from pyspark.errors import PySparkException

    from reclake.config import load_settings
    from reclake.quality.report import summary_lines
    from reclake.quality.validate import validate_table
    from reclake.spark import get_spark
    from reclake.storagefault import StorageError, describe

    settings = load_settings()
    try:
        spark = get_spark(app_name, settings)
        result = validate_table(
            spark,
            settings,
            args.table,
            version=args.version,
            start=args.start,
            end=args.end,
            baseline_id=args.baseline,
        )
    except (KeyError, ValueError, OSError, PySparkException, StorageError) as exc:
        fault = describe(exc, settings.lake_root)
        if fault is not None:  # a full disk, a denied permission, a damaged table
            print(f"validate: {fault}", file=sys.stderr)
            return EXIT_FAILED
        # KeyError quotes its message; show it plain.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"validate: {message}", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        emit(asdict(result), True)
    else:
        sys.stdout.write("\n".join(summary_lines(result)) + "\n")
        keys = ("id", "table", "version", "success")
        sys.stdout.write(json.dumps({k: getattr(result, k) for k in keys}) + "\n")
    return 0 if result.success else EXIT_FAILED
