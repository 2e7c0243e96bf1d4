"""Build point-in-time training samples for the labeled impressions of hours [start, end).

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/build_training_samples.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

--start/--end are impression hours (ISO-8601 UTC, whole hours). Fails (exit 2) when an
hour's inputs are not final yet: its labels are missing from silver, or build_tiles has not
processed every arrival hour its tiles depend on. Re-running replaces the same hours. Also
runs as `python jobs/build_training_samples.py ...`. Prints one JSON line of counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments: the interval of impression hours."""
    from reclake.timeutil import parse_utc

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", required=True, type=parse_utc, help="first sample hour (UTC)")
    p.add_argument("--end", required=True, type=parse_utc, help="end of interval, exclusive")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the samples for [start, end); returns the process exit code."""
    from reclake.config import load_settings
    from reclake.features.samples import InputsNotFinalError, build_training_samples
    from reclake.spark import get_spark

    args = parse_args(argv)
    settings = load_settings()
    spark = get_spark("build_training_samples", settings)
    try:
        result = build_training_samples(spark, settings, args.start, args.end)
    except InputsNotFinalError as exc:
        print(f"build_training_samples: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"build_training_samples: {exc}", file=sys.stderr)
        return 1
    summary = {"start": result.start, "end": result.end, "rows": result.rows}
    print(json.dumps(summary | {"version": result.version}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
