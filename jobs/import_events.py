"""Bulk import of event history in any folder layout into bronze/events + quarantine/events,
each record in the arrival hour of its event time:

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/import_events.py \
        --path s3a://bucket/history/ [--chunk-hours 24]

Prints one JSON line (hours, counts, chunks, commits, path); exits 1 on an unsupported file,
a missing path or counts that do not reconcile, 2 on bad arguments.
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
    """--path and --chunk-hours."""
    from reclake.jobrun import positive_int

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--path", required=True, help="folder (recursive) or file to import")
    parser.add_argument(
        "--chunk-hours",
        type=positive_int,
        help="arrival hours per pass (default: RECLAKE_INGEST_CHUNK_HOURS, 24)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the import; returns the process exit code."""
    from reclake.cli.bulk_import import run_import

    args = parse_args(argv)
    return run_import(args.path, args.chunk_hours)


if __name__ == "__main__":
    sys.exit(main())
