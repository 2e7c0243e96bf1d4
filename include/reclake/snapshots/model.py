"""What a snapshot is: the immutable record, its files, its id and the refs that name it.

Pure: no I/O here, so ids, refs and (de)serialisation are unit-testable.

In memory a Snapshot names its table and files by absolute URIs in the lake it was read from;
its stored record names them relative (the table to the lake root, files to the table), so a
copied or moved lake resolves them in its own place (docs/snapshots.md, "Moving a lake").
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from reclake import lakepath
from reclake.tables import TABLES
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

    path: str  # absolute URI in memory; stored relative to the table
    size: int
    partition_values: dict[str, str | None]
    num_records: int | None


@dataclass(frozen=True)
class Snapshot:
    """A named, immutable pointer to one validated table version and its exact file manifest."""

    id: str
    table: str
    table_uri: str  # absolute in memory; stored as table_path, relative to the lake root
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


def to_record(snapshot: Snapshot, lake_root: str) -> dict[str, Any]:
    """The JSON-ready publish record, paths relative to `lake_root` (state fields pinned and
    status are kept by the event log)."""
    record = asdict(snapshot)
    record.pop("status")
    table_uri = record.pop("table_uri")
    record["table_path"] = lakepath.relative_to(lake_root, table_uri)
    for f in record["files"]:
        f["path"] = lakepath.relative_to(table_uri, f["path"])
    return record


def is_stored_relative(record: dict[str, Any]) -> bool:
    """True for a record in the relative form; records written before it hold absolute
    URIs (table_uri and file paths)."""
    return "table_path" in record


def stored_record(record: dict[str, Any], lake_root: str) -> dict[str, Any]:
    """The record in the relative form: an old absolute record is migrated, placing its table
    in `lake_root` by its catalog path when the lake has moved since it was written."""
    if is_stored_relative(record):
        return record
    old_table = record["table_uri"]
    spec = TABLES.get(record["table"])
    try:
        table_path = lakepath.relocate(old_table, lake_root, spec.path if spec else None)
        # Files lie under the table they were published from, wherever that was.
        files = [{**f, "path": lakepath.relocate(f["path"], old_table)} for f in record["files"]]
    except lakepath.OutsideLake as exc:
        raise lakepath.OutsideLake(
            f"snapshot {record['id']} cannot be placed in the lake {lake_root}: {exc}"
        ) from None
    migrated = {k: v for k, v in record.items() if k != "table_uri"}
    return {**migrated, "table_path": table_path, "files": files}


def from_record(record: dict[str, Any], lake_root: str, *, pinned: bool, status: str) -> Snapshot:
    """Rebuild a Snapshot from its publish record (either form) plus its current state, its
    table and files resolved in `lake_root`."""
    record = stored_record(record, lake_root)
    known = {f.name for f in fields(Snapshot)}
    values = {k: v for k, v in record.items() if k in known}
    table_uri = lakepath.join(lake_root, record["table_path"])
    values["table_uri"] = table_uri
    values["files"] = tuple(
        SnapshotFile(**{**f, "path": lakepath.join(table_uri, f["path"])}) for f in record["files"]
    )
    values["partition_by"] = tuple(record["partition_by"])
    values["pinned"] = pinned
    values["status"] = status
    return Snapshot(**values)
