"""Compact and Z-order the partitions written since the last run (hourly maintenance).

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/optimize.py --table events

Also runs as `python jobs/optimize.py [--table T]`. Without --table it optimizes every
catalog table that exists. A partition nothing wrote to since the last run is skipped, so a
run with nothing new commits no version. Prints a one-line JSON summary per table; exits
non-zero on failure.
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
    from reclake.maintenance.optimize import optimize_all, optimize_table
    from reclake.spark import get_spark
    from reclake.tables import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="catalog table name (default: all that exist)")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        names = [table(args.table).name] if args.table else None
    except KeyError as exc:
        print(f"optimize: {exc.args[0]}", file=sys.stderr)
        return 2
    spark = get_spark("optimize", settings)
    try:
        if names:
            reports = [optimize_table(spark, settings, n) for n in names]
        else:
            reports = optimize_all(spark, settings)
    except FileNotFoundError as exc:
        print(f"optimize: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"optimize": [r.summary() for r in reports]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
