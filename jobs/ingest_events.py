"""Ingest landing drops into bronze/events and quarantine/events, one arrival hour at a time.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/ingest_events.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

The same arguments work against a cluster (`--master spark://host:7077`) and as
`python jobs/ingest_events.py ...`. Prints one JSON line of counts; exits non-zero on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Run the ingest for [start, end); returns the process exit code."""
    from reclake.ingest import IngestError, ingest_events
    from reclake.jobrun import EXIT_FAILED, interval_parser, parse_interval, run_spark_job

    args = parse_interval(interval_parser(__doc__, "arrival hour"), argv)
    return run_spark_job(
        "ingest_events",
        lambda spark, settings: ingest_events(spark, settings, args.start, args.end).totals(),
        {IngestError: EXIT_FAILED, ValueError: EXIT_FAILED},
    )


if __name__ == "__main__":
    sys.exit(main())
