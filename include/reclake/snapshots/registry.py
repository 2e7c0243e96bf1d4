"""The snapshot registry: publish behind the validation gate, resolve refs, move `latest`,
pin, expire. Every change is one atomic append to the event log (see store.py).

Records name their table and files relative to the lake (model.to_record). Records written
before that, with absolute URIs, are read in the relative form (model.stored_record) and
restated relative by the next change of the registry, in the same commit (`migrate` events),
or by `migrate()` (`reclake migrate-paths`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reclake.config import Settings
from reclake.quality.audit_results import AUDITED_TABLES, AuditResult, load_audit
from reclake.quality.results import ValidationResult, load_result
from reclake.snapshots import store
from reclake.snapshots.manifest import read_manifest
from reclake.snapshots.model import (
    LATEST,
    LIVE,
    Snapshot,
    SnapshotExpired,
    SnapshotGateError,
    SnapshotNotFound,
    is_stored_relative,
    parse_ref,
    snapshot_id,
    stored_record,
    to_record,
)
from reclake.snapshots.policy import select_expired
from reclake.snapshots.state import (
    EXPIRE,
    MIGRATE,
    PIN,
    PUBLISH,
    SET_LATEST,
    UNPIN,
    Event,
    RegistryState,
    fold,
)
from reclake.storagefault import guarded
from reclake.tables import table as table_spec
from reclake.timeutil import iso, parse_utc


def load_state(settings: Settings) -> RegistryState:
    """The registry's current state (a fold over its event log), resolved in this lake."""
    # An unreadable or damaged registry is a StorageError, never an empty registry: vacuum
    # keeps the files of live snapshots only as long as it can read which they are.
    with guarded(store.registry_uri(settings), settings.lake_root):
        events = store.read_events(settings)
    return fold(events, settings.lake_root)


def publish(
    settings: Settings,
    table: str,
    version: int,
    validation_id: str,
    *,
    interval: tuple[str, str] | None = None,
    retention_days: float | None = None,
    pinned: bool = False,
    audit_id: str | None = None,
    require_audit: bool = False,
) -> Snapshot:
    """Publish `table` at `version` as a snapshot and make it `latest`, if validation passed
    (and the audit `audit_id` names passed; require_audit refuses an audited table without).

    Idempotent: publishing the same table, version and validation again returns the existing
    snapshot and changes nothing.
    """
    spec = table_spec(table)
    result = _check_gate(settings, table, version, validation_id)
    audit = _check_audit(settings, table, version, audit_id, require_audit)
    state = load_state(settings)
    existing = _by_key(state, table, version, validation_id)
    if existing is not None:
        return _require_live(existing)

    start, end = interval or (result.interval_start, result.interval_end)
    manifest = read_manifest(spec.uri(settings), version)
    now = datetime.now(UTC)
    days = settings.snapshot_retention_days if retention_days is None else retention_days
    snap = Snapshot(
        id=snapshot_id(table, version, validation_id, now),
        table=table,
        table_uri=spec.uri(settings),
        version=version,
        files=manifest.files,
        row_count=manifest.row_count,
        schema=manifest.schema,
        partition_by=manifest.partition_by,
        interval_start=start,
        interval_end=end,
        validation_id=validation_id,
        created_at=iso(now),
        expires_at=iso(now + timedelta(days=days)) if days else None,
        pinned=pinned,
        status=LIVE,
        audit=audit.summary() if audit else None,
    )
    at = iso(now)
    _append(
        settings,
        state,
        [
            Event(PUBLISH, table, snap.id, at, record=to_record(snap, settings.lake_root)),
            Event(SET_LATEST, table, snap.id, at, note="publish"),
        ],
    )
    # A concurrent publisher of the same key may have committed first: its snapshot wins.
    winner = _by_key(load_state(settings), table, version, validation_id)
    if winner is None:
        raise RuntimeError(f"published {snap.id} but the registry does not show it")
    return winner


def resolve(settings: Settings, ref: str, *, allow_expired: bool = False) -> Snapshot:
    """The snapshot a ref names: '<table>@latest', '<table>@<id>' or '<id>'."""
    return _resolve_in(load_state(settings), ref, allow_expired=allow_expired)


def list_snapshots(
    settings: Settings, table: str | None = None, include_expired: bool = False
) -> list[Snapshot]:
    """Snapshots in publish order, live ones only unless include_expired."""
    snaps = load_state(settings).snapshots(table)
    return [s for s in snaps if include_expired or s.live]


def latest_id(settings: Settings, table: str) -> str | None:
    """The id `<table>@latest` points to, or None when nothing was published."""
    return load_state(settings).latest.get(table)


def live_files(settings: Settings, table: str) -> set[str]:
    """Every file URI that a live snapshot of the table needs (vacuum must keep these)."""
    return {f.path for s in list_snapshots(settings, table) for f in s.files}


def live_versions(settings: Settings, table: str) -> set[int]:
    """The table versions that live snapshots point to."""
    return {s.version for s in list_snapshots(settings, table)}


def rollback(settings: Settings, table: str, to: str | None = None) -> Snapshot:
    """Point `latest` back to the previous live snapshot, or to the snapshot `to` names."""
    state = load_state(settings)
    target = _rollback_target(state, table, to)
    _append(settings, state, [Event(SET_LATEST, table, target.id, _now(), note="rollback")])
    return _require_latest(settings, table, target.id)


def rollback_target(settings: Settings, table: str, to: str | None = None) -> Snapshot:
    """The snapshot `rollback(settings, table, to)` would point `latest` to (a dry run)."""
    return _rollback_target(load_state(settings), table, to)


def _rollback_target(state: RegistryState, table: str, to: str | None) -> Snapshot:
    if to is not None:
        return _resolve_in(state, to if "@" in to else f"{table}@{to}")
    current = state.latest.get(table)
    live = [s for s in state.snapshots(table) if s.live]
    ids = [s.id for s in live]
    if current not in ids or ids.index(current) == 0:
        raise SnapshotNotFound(
            f"no live snapshot of {table!r} before {current or 'nothing'} to roll back to"
        )
    return live[ids.index(current) - 1]


def pin(settings: Settings, ref: str) -> Snapshot:
    """Protect a live snapshot from expiry until unpinned."""
    state = load_state(settings)
    snap = _resolve_in(state, ref)
    _append(settings, state, [Event(PIN, snap.table, snap.id, _now())])
    return resolve(settings, snap.id)


def unpin(settings: Settings, ref: str) -> Snapshot:
    """Let a snapshot expire again by policy."""
    state = load_state(settings)
    snap = _resolve_in(state, ref, allow_expired=True)
    _append(settings, state, [Event(UNPIN, snap.table, snap.id, _now())])
    return resolve(settings, snap.id, allow_expired=True)


def expire(
    settings: Settings,
    table: str | None = None,
    *,
    keep_last: int = 5,
    older_than_days: float | None = None,
    now: datetime | str | None = None,
    dry_run: bool = False,
) -> list[Snapshot]:
    """Expire snapshots by policy (see policy.select_expired); returns those expired.

    Pinned snapshots and the one `latest` points to never expire. Expired records stay in
    the registry for audit; their files leave live_files, so vacuum may delete them.
    """
    state = load_state(settings)
    moment = parse_utc(now) if now is not None else datetime.now(UTC)
    tables = [table] if table else sorted({r["table"] for r in state.records.values()})
    chosen: list[Snapshot] = []
    for name in tables:
        chosen += select_expired(
            state.snapshots(name),
            lambda s: state.is_protected(s.id),
            keep_last=keep_last,
            older_than_days=older_than_days,
            now=moment,
        )
    if dry_run or not chosen:
        return chosen
    note = f"keep_last={keep_last} older_than_days={older_than_days}"
    at = iso(moment)
    _append(settings, state, [Event(EXPIRE, s.table, s.id, at, note=note) for s in chosen])
    # The fold may have ignored some (a concurrent pin or rollback won): report the truth.
    after = load_state(settings)
    return [after.snapshot(s.id) for s in chosen if not after.snapshot(s.id).live]


def migrate(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """Restate every record still holding absolute paths with paths relative to the lake (one
    commit); returns their ids. Reads need no migration: it makes the registry independent of
    where the lake was when those records were written."""
    events = _migration_events(load_state(settings))
    if events and not dry_run:
        _store(settings, events)
    return [e.snapshot_id for e in events]


def _append(settings: Settings, state: RegistryState, events: list[Event]) -> None:
    """Append a change, with the migration of records still in the absolute form in front of
    it: the registry is rewritten relative by its next change, in the same commit."""
    _store(settings, _migration_events(state) + events)


def _store(settings: Settings, events: list[Event]) -> None:
    """One registry commit; a full or read-only filesystem fails it whole (StorageError)."""
    with guarded(store.registry_uri(settings), settings.lake_root):
        store.append(settings, events)


def _migration_events(state: RegistryState) -> list[Event]:
    at = _now()
    return [
        Event(
            MIGRATE,
            record["table"],
            sid,
            at,
            note="paths relative to the lake",
            record=stored_record(record, state.lake_root),
        )
        for sid, record in state.records.items()
        if not is_stored_relative(record)
    ]


def _check_gate(
    settings: Settings, table: str, version: int, validation_id: str
) -> ValidationResult:
    """Refuse unless the validation result passed for exactly this table and version."""
    try:
        result = load_result(settings, table, validation_id)
    except KeyError as exc:
        raise SnapshotGateError(f"publish refused: {exc.args[0]}") from None
    problems = []
    if not result.success:
        failed = ", ".join(str(f.get("expectation")) for f in result.failures[:5])
        problems.append(f"validation failed ({failed or 'no details'})")
    if result.table != table:
        problems.append(f"result is for table {result.table!r}, not {table!r}")
    if int(result.version) != int(version):
        problems.append(f"result is for version {result.version}, not {version}")
    if problems:
        raise SnapshotGateError(
            f"publish of {table} v{version} refused by validation {validation_id!r}: "
            + "; ".join(problems)
        )
    return result


def _check_audit(
    settings: Settings, table: str, version: int, audit_id: str | None, required: bool
) -> AuditResult | None:
    """Refuse unless the audit passed for exactly this table and version (or, when none is
    given, the table has no audit or one is not required)."""
    if audit_id is None:
        if required and table in AUDITED_TABLES:
            raise SnapshotGateError(
                f"publish of {table} v{version} refused: no point-in-time audit given; run "
                "jobs/audit.py for that version and pass its id (--audit-id)"
            )
        return None
    try:
        audit = load_audit(settings, table, audit_id)
    except KeyError as exc:
        raise SnapshotGateError(f"publish refused: {exc.args[0]}") from None
    problems = []
    if not audit.success:
        worst = ", ".join(f"{k} ({n} rows)" for k, n in list(audit.mismatch_counts.items())[:5])
        problems.append(f"audit failed: {audit.mismatched_rows} mismatched rows ({worst})")
    if audit.table != table:
        problems.append(f"audit is for table {audit.table!r}, not {table!r}")
    if int(audit.version) != int(version):
        problems.append(f"audit is for version {audit.version}, not {version}")
    if problems:
        raise SnapshotGateError(
            f"publish of {table} v{version} refused by audit {audit_id!r}: " + "; ".join(problems)
        )
    return audit


def _by_key(state: RegistryState, table: str, version: int, validation_id: str):
    sid = state.by_key.get((table, int(version), validation_id))
    return None if sid is None else state.snapshot(sid)


def _resolve_in(state: RegistryState, ref: str, *, allow_expired: bool = False) -> Snapshot:
    table, name = parse_ref(ref)
    if name == LATEST:
        if table is None:
            raise SnapshotNotFound(f"{ref!r}: 'latest' needs a table, e.g. training_samples@latest")
        sid = state.latest.get(table)
        if sid is None:
            raise SnapshotNotFound(f"no snapshot has been published for table {table!r}")
    else:
        sid = state.canonical(name)
        if sid not in state.records:
            raise SnapshotNotFound(f"unknown snapshot {name!r}; see `reclake snapshots list`")
        if table is not None and state.records[sid]["table"] != table:
            raise SnapshotNotFound(
                f"snapshot {name!r} belongs to table {state.records[sid]['table']!r}, not {table!r}"
            )
    snap = state.snapshot(sid)
    return snap if allow_expired else _require_live(snap, state.expired_at.get(sid))


def _require_live(snap: Snapshot, expired_at: str | None = None) -> Snapshot:
    if snap.live:
        return snap
    when = f" at {expired_at}" if expired_at else ""
    raise SnapshotExpired(
        f"snapshot {snap.id} expired{when}: its files may be vacuumed; "
        f"use {snap.table}@latest or a live snapshot "
        f"(`reclake snapshots list --table {snap.table}`)"
    )


def _require_latest(settings: Settings, table: str, sid: str) -> Snapshot:
    """Re-read after a `latest` move and fail if a concurrent change undid it."""
    state = load_state(settings)
    if state.latest.get(table) != sid:
        raise RuntimeError(f"{table}@latest moved concurrently (now {state.latest.get(table)})")
    return state.snapshot(sid)


def _now() -> str:
    return iso(datetime.now(UTC))


__all__ = [
    "expire",
    "latest_id",
    "list_snapshots",
    "live_files",
    "live_versions",
    "migrate",
    "pin",
    "publish",
    "resolve",
    "rollback",
    "rollback_target",
    "unpin",
]
