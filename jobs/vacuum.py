"""Snapshot-aware vacuum: delete data files no current, recent or snapshotted version needs.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/vacuum.py --table events --dry-run

Also runs as `python jobs/vacuum.py [--table T] [--dry-run] [--retention-hours H]`. Without
--table it vacuums every catalog table that exists. Files of live snapshots are never
deleted (docs/maintenance.md). Prints a one-line JSON summary per table; exits non-zero on
failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    from reclake.jobrun import EXIT_FAILED, run_spark_job, table_parser
    from reclake.maintenance.vacuum import vacuum_all, vacuum_table

    parser = table_parser(__doc__)
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    parser.add_argument("--retention-hours", type=float, help="default: the table's policy")
    args = parser.parse_args(argv)

    def work(spark, settings) -> dict:
        if args.table:
            reports = [
                vacuum_table(spark, settings, args.table, args.dry_run, args.retention_hours)
            ]
        else:
            reports = vacuum_all(spark, settings, args.dry_run, args.retention_hours)
        return {"vacuum": [r.summary() for r in reports]}

    return run_spark_job("vacuum", work, {FileNotFoundError: EXIT_FAILED})


if __name__ == "__main__":
    sys.exit(main())
