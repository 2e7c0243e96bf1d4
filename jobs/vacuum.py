"""Snapshot-aware vacuum: delete data files no current, recent or snapshotted version needs.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/vacuum.py --table events --dry-run

Also runs as `python jobs/vacuum.py [--table T] [--dry-run] [--retention-hours H]`. Without
--table it vacuums every catalog table that exists. Files of live snapshots are never
deleted (docs/maintenance.md). Prints a one-line JSON summary per table; exits non-zero on
failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    from reclake.config import load_settings
    from reclake.maintenance.vacuum import vacuum_all, vacuum_table
    from reclake.spark import get_spark
    from reclake.tables import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="catalog table name (default: all that exist)")
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    parser.add_argument("--retention-hours", type=float, help="default: the table's policy")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        name = table(args.table).name if args.table else None
    except KeyError as exc:
        print(f"vacuum: {exc.args[0]}", file=sys.stderr)
        return 2
    spark = get_spark("vacuum", settings)
    try:
        if name:
            reports = [vacuum_table(spark, settings, name, args.dry_run, args.retention_hours)]
        else:
            reports = vacuum_all(spark, settings, args.dry_run, args.retention_hours)
    except FileNotFoundError as exc:
        print(f"vacuum: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"vacuum": [r.summary() for r in reports]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
