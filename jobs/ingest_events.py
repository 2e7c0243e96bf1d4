"""Ingest landing drops into bronze/events and quarantine/events, one arrival hour at a time.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/ingest_events.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

The same arguments work against a cluster (`--master spark://host:7077`) and as
`python jobs/ingest_events.py ...`. Prints one JSON line of counts; exits non-zero on failure.
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
    """Command-line arguments: the interval of arrival hours."""
    from reclake.timeutil import parse_utc

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", required=True, type=parse_utc, help="first arrival hour (UTC)")
    p.add_argument("--end", required=True, type=parse_utc, help="end of interval, exclusive")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the ingest for [start, end); returns the process exit code."""
    from reclake.config import load_settings
    from reclake.ingest import IngestError, ingest_events
    from reclake.spark import get_spark

    args = parse_args(argv)
    settings = load_settings()
    spark = get_spark("ingest_events", settings)
    try:
        report = ingest_events(spark, settings, args.start, args.end)
    except (IngestError, ValueError) as exc:
        print(f"ingest_events: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.totals(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
