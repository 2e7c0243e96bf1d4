"""The registry's current state as a fold over its append-only event log (pure, no I/O).

Events are applied in commit order. The fold enforces the registry's invariants, so a race
between writers can never break them: the first publish of a (table, version, validation)
wins and later duplicates become aliases of it; `latest` never points at an expired
snapshot; pinned snapshots and the one `latest` points to cannot be expired.

A `migrate` event restates a publish record written with absolute paths in the relative form
(docs/snapshots.md, "Moving a lake"); the original publish event stays, as the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reclake.snapshots.model import EXPIRED, LIVE, Snapshot, from_record, is_stored_relative

PUBLISH = "publish"
SET_LATEST = "latest"
PIN = "pin"
UNPIN = "unpin"
EXPIRE = "expire"
MIGRATE = "migrate"
EVENT_KINDS = (PUBLISH, SET_LATEST, PIN, UNPIN, EXPIRE, MIGRATE)


@dataclass(frozen=True)
class Event:
    """One registry change. `record` is the snapshot's publish record for PUBLISH events (and
    the same record with relative paths for MIGRATE events)."""

    kind: str
    table: str
    snapshot_id: str
    at: str
    note: str = ""
    record: dict[str, Any] | None = None


@dataclass
class RegistryState:
    """Every snapshot ever published, with the state the events left it in; snapshots are
    resolved in the lake at `lake_root`."""

    lake_root: str
    # id -> record as stored (relative, or absolute if written before), publish order
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)  # duplicate publish id -> first id
    by_key: dict[tuple[str, int, str], str] = field(default_factory=dict)
    pinned: dict[str, bool] = field(default_factory=dict)
    expired_at: dict[str, str] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)  # table -> snapshot id

    def canonical(self, snapshot_id: str) -> str:
        """The id a (possibly duplicate) publish id stands for."""
        return self.alias.get(snapshot_id, snapshot_id)

    def snapshot(self, snapshot_id: str) -> Snapshot:
        """The snapshot with its current pinned flag and status."""
        sid = self.canonical(snapshot_id)
        status = EXPIRED if sid in self.expired_at else LIVE
        record = self.records[sid]
        return from_record(record, self.lake_root, pinned=self.pinned[sid], status=status)

    def snapshots(self, table: str | None = None) -> list[Snapshot]:
        """All snapshots (of one table), in publish order."""
        return [
            self.snapshot(sid)
            for sid, rec in self.records.items()
            if table is None or rec["table"] == table
        ]

    def apply(self, event: Event) -> None:
        """Apply one event; events that would break an invariant are ignored."""
        if event.kind == PUBLISH:
            self._publish(event)
            return
        sid = self.canonical(event.snapshot_id)
        if sid not in self.records:
            return
        expired = sid in self.expired_at
        if event.kind == SET_LATEST and not expired:
            self.latest[self.records[sid]["table"]] = sid
        elif event.kind == PIN and not expired:
            self.pinned[sid] = True
        elif event.kind == UNPIN:
            self.pinned[sid] = False
        elif event.kind == EXPIRE and not expired and not self.is_protected(sid):
            self.expired_at[sid] = event.at
        elif event.kind == MIGRATE:
            self._migrate(sid, event.record or {})

    def is_protected(self, snapshot_id: str) -> bool:
        """Pinned snapshots and the one `latest` points to never expire."""
        sid = self.canonical(snapshot_id)
        table = self.records[sid]["table"]
        return self.pinned.get(sid, False) or self.latest.get(table) == sid

    def _publish(self, event: Event) -> None:
        record = event.record or {}
        key = (record["table"], int(record["version"]), record["validation_id"])
        if key in self.by_key:
            self.alias[record["id"]] = self.by_key[key]
            return
        if record["id"] in self.records:
            return  # id collision with a different key: keep the first
        self.records[record["id"]] = record
        self.by_key[key] = record["id"]
        self.pinned[record["id"]] = bool(record.get("pinned", False))

    def _migrate(self, sid: str, record: dict[str, Any]) -> None:
        current = self.records[sid]
        # Only a relative restatement of the same snapshot replaces its record.
        same = all(record.get(k) == current[k] for k in ("id", "table", "version", "validation_id"))
        if same and is_stored_relative(record):
            self.records[sid] = record


def fold(events: Iterable[Event], lake_root: str) -> RegistryState:
    """The state after applying events in order, for the lake at `lake_root`."""
    state = RegistryState(lake_root)
    for event in events:
        state.apply(event)
    return state
