"""Ingest the landing drops of arrival hours [start, end) into bronze/events + quarantine/events.

One set-based pass, with one bronze and one quarantine commit, per chunk of arrival hours:

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/ingest_events.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z [--chunk-hours 24]

The same arguments work against a cluster (`--master spark://host:7077`) and as
`python jobs/ingest_events.py ...`. Prints one JSON line of counts, chunks and Delta commits;
exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--start/--end (whole UTC hours) and --chunk-hours."""
    from reclake.jobrun import interval_parser, parse_interval, positive_int

    parser = interval_parser(__doc__, "arrival hour")
    parser.add_argument(
        "--chunk-hours",
        type=positive_int,
        help="arrival hours per pass (default: RECLAKE_INGEST_CHUNK_HOURS, 24)",
    )
    return parse_interval(parser, argv)


def main(argv: list[str] | None = None) -> int:
    """Run the ingest for [start, end); returns the process exit code."""
    from reclake.ingest import IngestError, ingest_events
    from reclake.jobrun import EXIT_FAILED, run_spark_job

    args = parse_args(argv)
    return run_spark_job(
        "ingest_events",
        lambda spark, settings: ingest_events(
            spark, settings, args.start, args.end, chunk_hours=args.chunk_hours
        ).totals(),
        {IngestError: EXIT_FAILED, ValueError: EXIT_FAILED},
    )


if __name__ == "__main__":
    sys.exit(main())
