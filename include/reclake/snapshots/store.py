"""The registry's storage: an append-only Delta table of events, written with delta-rs.

Why a Delta table: its commit protocol gives atomic, ordered appends from any number of
concurrent writers on a local folder or object storage, and its change data feed returns
every event with the commit version that orders it. Each call to `append` is one commit, so
a publish (snapshot record + `latest` move) is all-or-nothing.
"""

from __future__ import annotations

import json

import pyarrow as pa

from reclake import chaos
from reclake.config import Settings
from reclake.snapshots.deltars import open_table, rs_uri, storage_options
from reclake.snapshots.state import Event

REGISTRY_PATH = "_reclake/snapshots"
COMMIT_RETRIES = 8

EVENT_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("table", pa.string()),
        ("snapshot_id", pa.string()),
        ("at", pa.string()),
        ("note", pa.string()),
        ("record", pa.string()),  # JSON publish record, PUBLISH events only
        ("seq", pa.int32()),  # order of events within one commit
    ]
)

TABLE_CONFIG = {
    "delta.appendOnly": "true",
    # Events are read through the change data feed, ordered by _commit_version.
    "delta.enableChangeDataFeed": "true",
    # The event log is the audit trail: its commits must never be cleaned up.
    "delta.logRetentionDuration": "interval 36500 days",
}


def registry_uri(settings: Settings) -> str:
    """Where the registry's Delta table lives in the lake."""
    return settings.table_uri(REGISTRY_PATH)


def read_events(settings: Settings) -> list[Event]:
    """Every event, in commit order (empty when nothing was ever published)."""
    from deltalake import DeltaTable

    uri = rs_uri(registry_uri(settings))
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options(uri)):
        return []
    rows = pa.table(open_table(uri).load_cdf(starting_version=0)).to_pylist()
    rows = [r for r in rows if r["_change_type"] == "insert"]
    rows.sort(key=lambda r: (r["_commit_version"], r["seq"]))
    return [
        Event(
            kind=r["kind"],
            table=r["table"],
            snapshot_id=r["snapshot_id"],
            at=r["at"],
            note=r["note"] or "",
            record=json.loads(r["record"]) if r["record"] else None,
        )
        for r in rows
    ]


def append(settings: Settings, events: list[Event]) -> None:
    """Append events in ONE commit; retries when concurrent writers conflict."""
    from deltalake import write_deltalake

    if not events:
        return
    uri = rs_uri(registry_uri(settings))
    _ensure_table(uri)
    batch = pa.table(
        {
            "kind": [e.kind for e in events],
            "table": [e.table for e in events],
            "snapshot_id": [e.snapshot_id for e in events],
            "at": [e.at for e in events],
            "note": [e.note for e in events],
            "record": [json.dumps(e.record, sort_keys=True) if e.record else None for e in events],
            "seq": pa.array(range(len(events)), pa.int32()),
        },
        schema=EVENT_SCHEMA,
    )

    def commit() -> None:
        write_deltalake(uri, batch, mode="append", storage_options=storage_options(uri))
        chaos.point("commit")

    # Lazy: the maintenance package imports the registry (vacuum keeps snapshots' files).
    from reclake.maintenance.retry import retry_on_conflict

    retry_on_conflict(commit, attempts=COMMIT_RETRIES, base_delay=0.05, max_delay=6.4)


def _ensure_table(uri: str) -> None:
    """Create the registry table unless it exists; a concurrent creator winning is fine."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    options = storage_options(uri)
    if DeltaTable.is_deltatable(uri, storage_options=options):
        return
    try:
        DeltaTable.create(
            uri,
            schema=EVENT_SCHEMA,
            mode="ignore",
            configuration=TABLE_CONFIG,
            storage_options=options,
        )
    except DeltaError:
        if not DeltaTable.is_deltatable(uri, storage_options=options):
            raise
