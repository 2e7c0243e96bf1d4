"""What a snapshot is: the immutable record, its files, its id and the refs that name it.

Pure: no I/O here, so ids, refs and (de)serialisation are unit-testable.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from reclake.timeutil import parse_utc

LATEST = "latest"
LIVE = "live"
EXPIRED = "expired"


class SnapshotNotFound(KeyError):
    """No snapshot matches the ref (unknown id, or no snapshot published for the table)."""

    def __str__(self) -> str:
        # KeyError quotes its message; a plain message reads better in CLI output.
        return str(self.args[0]) if self.args else "snapshot not found"


class SnapshotExpired(RuntimeError):
    """The snapshot exists but expired: its files may already be vacuumed."""


class SnapshotGateError(RuntimeError):
    """Publishing was refused: the validation (or audit) result does not vouch for this table
    version."""


@dataclass(frozen=True)
class SnapshotFile:
    """One Parquet data file of a snapshot, as recorded in the Delta log of its version."""

    path: str  # absolute URI
    size: int
    partition_values: dict[str, str | None]
    num_records: int | None


@dataclass(frozen=True)
class Snapshot:
    """A named, immutable pointer to one validated table version and its exact file manifest."""

    id: str
    table: str
    table_uri: str
    version: int
    files: tuple[SnapshotFile, ...]
    row_count: int
    schema: str  # JSON of the Delta schema
    partition_by: tuple[str, ...]
    interval_start: str | None
    interval_end: str | None
    validation_id: str
    created_at: str
    expires_at: str | None
    pinned: bool
    status: str  # LIVE | EXPIRED
    # The passed point-in-time audit that allowed the publish: id, success, sample_size,
    # seed, rows_checked, mismatched_rows (None for tables without an audit).
    audit: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        """What makes a publish idempotent: the same table, version and validation."""
        return (self.table, self.version, self.validation_id)

    @property
    def live(self) -> bool:
        """True while the snapshot's files are guaranteed to exist."""
        return self.status == LIVE

    @property
    def size_bytes(self) -> int:
        """Total bytes of the snapshot's data files."""
        return sum(f.size for f in self.files)


def snapshot_id(table: str, version: int, validation_id: str, created_at: datetime) -> str:
    """Readable, unique id: <table>-v<version>-<UTC publish time>-<6 hex of the validation id>."""
    stamp = parse_utc(created_at).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha1(f"{table}\0{version}\0{validation_id}".encode()).hexdigest()[:6]
    return f"{table}-v{version}-{stamp}-{digest}"


def parse_ref(ref: str) -> tuple[str | None, str]:
    """Split a ref into (table or None, id or 'latest'): 'tbl@latest', 'tbl@<id>' or '<id>'."""
    ref = ref.strip()
    if not ref:
        raise SnapshotNotFound("empty snapshot ref; use <table>@latest, <table>@<id> or <id>")
    if "@" in ref:
        table, _, name = ref.partition("@")
        if not table or not name:
            raise SnapshotNotFound(f"malformed snapshot ref {ref!r}; use <table>@latest or <id>")
        return table, name
    return None, ref


def to_record(snapshot: Snapshot) -> dict[str, Any]:
    """The JSON-ready publish record (state fields pinned/status are kept by the event log)."""
    record = asdict(snapshot)
    record.pop("status")
    return record


def from_record(record: dict[str, Any], *, pinned: bool, status: str) -> Snapshot:
    """Rebuild a Snapshot from its publish record plus its current state."""
    known = {f.name for f in fields(Snapshot)}
    values = {k: v for k, v in record.items() if k in known}
    values["files"] = tuple(SnapshotFile(**f) for f in record["files"])
    values["partition_by"] = tuple(record["partition_by"])
    values["pinned"] = pinned
    values["status"] = status
    return Snapshot(**values)
