"""`reclake import PATH`: bulk import of event history in any folder layout (see
reclake.ingest.bulk and docs/ingest.md, "Bulk import")."""

from __future__ import annotations

import argparse

from reclake.jobrun import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `import` sub-command."""
    p = sub.add_parser(
        "import",
        help="event files in any layout -> bronze/events + quarantine/events, by event hour",
    )
    p.add_argument("path", help="a folder (read recursively) or one file; local path or URI")
    p.add_argument(
        "--chunk-hours",
        type=positive_int,
        help="arrival hours per pass (default: RECLAKE_INGEST_CHUNK_HOURS, 24)",
    )
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    return run_import(args.path, args.chunk_hours)


def run_import(path: str, chunk_hours: int | None = None) -> int:
    """Import `path`, print the summary as one JSON line; returns the exit code (an IngestError
    is one line on stderr and exit 1)."""
    from reclake.ingest import IngestError
    from reclake.ingest.bulk import import_summary
    from reclake.jobrun import EXIT_FAILED, run_spark_job

    return run_spark_job(
        "reclake import",
        lambda spark, settings: import_summary(spark, settings, path, chunk_hours),
        {IngestError: EXIT_FAILED},
    )
