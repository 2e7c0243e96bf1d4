"""Ingest of landing drops into bronze/events and quarantine/events: one set-based pass per
chunk of arrival hours, one log per arrival hour."""

from reclake.ingest.layout import IngestError
from reclake.ingest.log import (
    HourReport,
    IngestReport,
    ingested_hours,
    load_ingest_log,
    load_ingest_logs,
)

__all__ = [
    "HourReport",
    "IngestError",
    "IngestReport",
    "ingest_events",
    "ingested_hours",
    "load_ingest_log",
    "load_ingest_logs",
]


def __getattr__(name: str):
    # Keep `import reclake.ingest` free of pyspark for readers of the log (e.g. DAG code).
    if name == "ingest_events":
        from reclake.ingest.run import ingest_events

        return ingest_events
    raise AttributeError(name)
