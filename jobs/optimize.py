"""Compact and Z-order the partitions written since the last run (hourly maintenance).

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/optimize.py --table events

Also runs as `python jobs/optimize.py [--table T]`. Without --table it optimizes every
catalog table that exists. A partition nothing wrote to since the last run is skipped, so a
run with nothing new commits no version. Prints a one-line JSON summary per table; exits
non-zero on failure.
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
    from reclake.maintenance.optimize import optimize_all, optimize_table

    args = table_parser(__doc__).parse_args(argv)

    def work(spark, settings) -> dict:
        if args.table:
            reports = [optimize_table(spark, settings, args.table)]
        else:
            reports = optimize_all(spark, settings)
        return {"optimize": [r.summary() for r in reports]}

    return run_spark_job("optimize", work, {FileNotFoundError: EXIT_FAILED})


if __name__ == "__main__":
    sys.exit(main())
