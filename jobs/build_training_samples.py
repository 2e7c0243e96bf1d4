"""Build point-in-time training samples for the labeled impressions of hours [start, end).

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/build_training_samples.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

--start/--end are impression hours (ISO-8601 UTC, whole hours); any span, from one hour to
months: the window features of all its hours come from one set-based computation, and the
samples are committed once per chunk of --chunk-hours (default RECLAKE_SAMPLES_CHUNK_HOURS).
An hour without impressions yields no samples and is final like any other. Fails (exit 3)
when an hour's inputs are not final yet: label_impressions has not processed it, or
build_tiles has not processed every arrival hour its tiles depend on. Re-running replaces the
same hours. Also runs as `python jobs/build_training_samples.py ...`. Prints one JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Build the samples for [start, end); returns the process exit code."""
    from reclake.features.samples import InputsNotFinalError, build_training_samples
    from reclake.jobrun import (
        EXIT_FAILED,
        EXIT_NOT_FINAL,
        interval_parser,
        parse_interval,
        positive_int,
        run_spark_job,
    )

    parser = interval_parser(__doc__, "sample hour")
    parser.add_argument(
        "--chunk-hours", type=positive_int, help="hours per window computation and commit"
    )
    args = parse_interval(parser, argv)

    def work(spark, settings) -> dict:
        result = build_training_samples(
            spark, settings, args.start, args.end, chunk_hours=args.chunk_hours
        )
        return {
            "start": result.start,
            "end": result.end,
            "rows": result.rows,
            "version": result.version,
            "chunks": result.chunks,
            "bootstrapped_chunks": result.bootstrapped,
        }

    return run_spark_job(
        "build_training_samples",
        work,
        {
            InputsNotFinalError: EXIT_NOT_FINAL,
            FileNotFoundError: EXIT_FAILED,
            ValueError: EXIT_FAILED,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
