"""The maintenance log: one JSON record per optimize or vacuum run, kept beside the tables.

Layout: <lake>/_reclake/maintenance_log/<table>/<operation>/<UTC start>-<id>.json. Names sort
by start time, so the last run of an operation is found by listing one folder, not reading
every record.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclake import lakefs
from reclake.config import Settings

LOG_DIR = "_reclake/maintenance_log"
OPTIMIZE = "optimize"
VACUUM = "vacuum"


@dataclass(frozen=True)
class MaintenanceRecord:
    """What one maintenance run did to one table."""

    table: str
    operation: str  # optimize | vacuum
    started_at: str
    finished_at: str
    duration_s: float
    dry_run: bool = False
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    # Partitions acted on, as {column: value} (empty dict = the whole unpartitioned table).
    partitions: list[dict[str, str | None]] = field(default_factory=list)
    # Versions: the table's version when the run read it, and the one it committed (if any).
    read_version: int | None = None
    version_produced: int | None = None
    # Optimize: every commit up to here was considered; the next run starts after it.
    scanned_through_version: int | None = None
    deleted_files: int = 0
    deleted_bytes: int = 0
    conflicts_retried: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def timestamp(moment: datetime) -> str:
    """A UTC ISO-8601 time with microseconds, so records of one second still sort in order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_uri(settings: Settings, record: MaintenanceRecord) -> str:
    """Where a record is stored (name sorts by start time)."""
    stamp = datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
    name = f"{stamp.strftime('%Y%m%dT%H%M%S%fZ')}-{record.id}.json"
    return settings.table_uri(f"{LOG_DIR}/{record.table}/{record.operation}/{name}")


def append(settings: Settings, record: MaintenanceRecord) -> str:
    """Persist one record; returns its URI."""
    uri = record_uri(settings, record)
    lakefs.write_json(uri, asdict(record))
    return uri


def records(
    settings: Settings, table: str, operation: str, limit: int | None = None
) -> list[MaintenanceRecord]:
    """Records of one table and operation, newest first (at most `limit`)."""
    folder = settings.table_uri(f"{LOG_DIR}/{table}/{operation}")
    uris = sorted(lakefs.list_files(folder, ".json"), reverse=True)
    if limit is not None:
        uris = uris[:limit]
    return [MaintenanceRecord(**lakefs.read_json(u)) for u in uris]


def last(
    settings: Settings, table: str, operation: str, *, dry_run: bool | None = False
) -> MaintenanceRecord | None:
    """The newest record of an operation on a table (real runs only unless dry_run=None)."""
    folder = settings.table_uri(f"{LOG_DIR}/{table}/{operation}")
    # Read newest first and stop at the first match: the log grows by one record per run.
    for uri in sorted(lakefs.list_files(folder, ".json"), reverse=True):
        rec = MaintenanceRecord(**lakefs.read_json(uri))
        if dry_run is None or rec.dry_run == dry_run:
            return rec
    return None
