"""Label the impressions of whole hours [start, end) into silver/impressions_labeled.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/label_impressions.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

Also runs as `python jobs/label_impressions.py --start ... --end ...`. Prints a one-line JSON
summary; exits 3 when the hours are not final yet (their actions may still arrive), 1 on
other failures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

EXIT_NOT_FINAL = 3  # argparse uses 2 for usage errors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--start/--end: ISO-8601 UTC whole hours."""
    from reclake.timeutil import hours_between, parse_utc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, type=parse_utc, help="first hour, inclusive")
    parser.add_argument("--end", required=True, type=parse_utc, help="last hour, exclusive")
    args = parser.parse_args(argv)
    try:
        if not list(hours_between(args.start, args.end)):
            parser.error("--end must be after --start")
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    from reclake.config import load_settings
    from reclake.features.labels import LabelsNotFinal, label_impressions
    from reclake.spark import get_spark

    args = parse_args(argv)
    settings = load_settings()
    spark = get_spark("label_impressions", settings)
    try:
        report = label_impressions(spark, settings, args.start, args.end)
    except LabelsNotFinal as exc:
        print(f"label_impressions: {exc}", file=sys.stderr)
        return EXIT_NOT_FINAL
    print(json.dumps(asdict(report), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
