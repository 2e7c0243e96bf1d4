"""Fold bronze events that arrived in [start, end) into the hourly user and item tiles.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/build_tiles.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z [--chunk-hours 168]

--start/--end are arrival hours (ISO-8601 UTC, whole hours); each chunk of --chunk-hours
(default: the whole interval) is one commit per tile table. Every event hour those arrivals
touch (late events within the allowed lateness fold into earlier hours) is rebuilt from all
of its bronze events, so re-running gives the same tiles. Also runs as
`python jobs/build_tiles.py ...`. Prints one JSON line of counts; exits non-zero on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Build the tiles for arrival hours [start, end); returns the process exit code."""
    from reclake.features.tiles import build_tiles
    from reclake.jobrun import (
        EXIT_FAILED,
        chunked,
        interval_parser,
        parse_interval,
        positive_int,
        run_spark_job,
        summed,
    )

    parser = interval_parser(__doc__, "arrival hour")
    parser.add_argument("--chunk-hours", type=positive_int, help="arrival hours per commit")
    args = parse_interval(parser, argv)

    def chunk(spark, settings, start, end) -> dict:
        result = build_tiles(spark, settings, start, end)
        return {
            "rebuilt_hours": len(result.rebuilt_hours),
            **{f"{name}_rows": rows for name, rows in result.rows.items()},
        }

    def work(spark, settings) -> dict:
        parts = chunked("build_tiles", args, lambda s, e: chunk(spark, settings, s, e))
        return summed(parts, args)

    return run_spark_job(
        "build_tiles", work, {FileNotFoundError: EXIT_FAILED, ValueError: EXIT_FAILED}
    )


if __name__ == "__main__":
    sys.exit(main())
