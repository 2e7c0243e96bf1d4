"""Fold bronze events that arrived in [start, end) into the hourly user and item tiles.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/build_tiles.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z

--start/--end are arrival hours (ISO-8601 UTC, whole hours). Every event hour those arrivals
touch (late events within the allowed lateness fold into earlier hours) is rebuilt from all
of its bronze events, so re-running gives the same tiles. Also runs as
`python jobs/build_tiles.py ...`. Prints one JSON line of counts; exits non-zero on failure.
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
    """Build the tiles for arrival hours [start, end); returns the process exit code."""
    from reclake.config import load_settings
    from reclake.features.tiles import build_tiles
    from reclake.spark import get_spark

    args = parse_args(argv)
    settings = load_settings()
    spark = get_spark("build_tiles", settings)
    try:
        result = build_tiles(spark, settings, args.start, args.end)
    except (FileNotFoundError, ValueError) as exc:
        print(f"build_tiles: {exc}", file=sys.stderr)
        return 1
    summary = {
        "start": result.start,
        "end": result.end,
        "rebuilt_hours": len(result.rebuilt_hours),
        **{f"{name}_rows": rows for name, rows in result.rows.items()},
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
