"""Build point-in-time training samples for the labeled impressions of hours [start, end).

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/build_training_samples.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

--start/--end are impression hours (ISO-8601 UTC, whole hours). Fails (exit 3) when an
hour's inputs are not final yet: its labels are missing from silver, or build_tiles has not
processed every arrival hour its tiles depend on. Re-running replaces the same hours. Also
runs as `python jobs/build_training_samples.py ...`. Prints one JSON line of counts.
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
        run_spark_job,
    )

    args = parse_interval(interval_parser(__doc__, "sample hour"), argv)

    def work(spark, settings) -> dict:
        result = build_training_samples(spark, settings, args.start, args.end)
        return {
            "start": result.start,
            "end": result.end,
            "rows": result.rows,
            "version": result.version,
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
