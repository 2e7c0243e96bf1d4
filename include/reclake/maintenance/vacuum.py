"""Snapshot-aware VACUUM: delete only data files that nothing may still read.

Plain Delta VACUUM keeps the files of versions inside its retention window and nothing
else, so it deletes the files of an old version a training run has pinned. Here a file is
kept when any of these needs it:
- the current version;
- a version committed within the retention window, or the version that was current when
  the window opened (a reader may have started then);
- a live snapshot (reclake.snapshots.live_files);
- for dims/users and dims/items, a version the rows of a live training_samples snapshot were
  built against (maintenance.dims_lineage): a later audit of that snapshot reads it;
- it was written within the retention window (an in-flight, not yet committed write).
Everything else under the table folder is deleted; `_delta_log` (and any `_`/`.` folder)
is never touched. Vacuum also keeps the Delta log long enough for Spark time travel to the
oldest live snapshot (see keep_log_for_snapshots).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyarrow import fs as pafs

from reclake import lakefs
from reclake.config import Settings
from reclake.io import set_table_properties
from reclake.maintenance import deltalog, dims_lineage
from reclake.maintenance import log as mlog
from reclake.maintenance.policy import policy_for
from reclake.snapshots import list_snapshots
from reclake.snapshots.deltars import open_table
from reclake.tables import table as table_spec
from reclake.timeutil import parse_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_RETENTION_KEY = "delta.logRetentionDuration"
DELTA_DEFAULT_LOG_RETENTION_DAYS = 30.0
# Bump log retention when the oldest live snapshot gets this close to falling out of it.
LOG_RETENTION_MARGIN_DAYS = 7.0


@dataclass(frozen=True)
class StoredFile:
    """A data file found on storage."""

    path: str  # table-relative
    size: int
    mtime_ms: int


@dataclass(frozen=True)
class VacuumReport:
    """What one vacuum run deleted (or, in a dry run, would delete) and why it kept the rest."""

    table: str
    dry_run: bool
    retention_hours: float
    current_version: int
    oldest_kept_version: int
    files_on_storage: int
    bytes_on_storage: int
    kept_current: int
    kept_window: int  # kept only for versions in the retention window
    kept_snapshots: int  # kept only for live snapshots
    kept_recent: int  # kept only because written within the window (maybe uncommitted)
    deleted_files: int
    deleted_bytes: int
    deleted: list[str] = field(default_factory=list)  # table-relative paths
    log_retention_days_set: int | None = None
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary without the file list."""
        data = asdict(self)
        data.pop("deleted")
        return data


def is_data_path(relative: str) -> bool:
    """True for a path vacuum may consider: nothing under `_delta_log` or hidden folders."""
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


def select_deletable(
    stored: list[StoredFile],
    current: set[str],
    window: set[str],
    snapshots: set[str],
    cutoff_ms: int,
) -> tuple[list[StoredFile], dict[str, int]]:
    """Files no reader may need (pure), and how many were kept for each reason."""
    kept = {"current": 0, "window": 0, "snapshots": 0, "recent": 0}
    deletable = []
    for f in stored:
        if f.path in current:
            kept["current"] += 1
        elif f.path in window:
            kept["window"] += 1
        elif f.path in snapshots:
            kept["snapshots"] += 1
        elif f.mtime_ms >= cutoff_ms:
            kept["recent"] += 1
        else:
            deletable.append(f)
    return deletable, kept


def parse_retention_days(value: str | None) -> float:
    """Days in a Delta interval property ('interval 30 days'); Delta's default when unset."""
    if not value:
        return DELTA_DEFAULT_LOG_RETENTION_DAYS
    match = re.fullmatch(r"\s*(?:interval\s+)?(\d+(?:\.\d+)?)\s+(\w+?)s?\s*", value.lower())
    if not match:
        raise ValueError(f"cannot parse {LOG_RETENTION_KEY}={value!r}")
    per_day = {"week": 7, "day": 1, "hour": 1 / 24, "minute": 1 / 1440, "second": 1 / 86400}
    return float(match.group(1)) * per_day[match.group(2)]


def log_retention_to_set(
    current_days: float, policy_days: int, oldest_snapshot_age_days: float | None
) -> int | None:
    """The delta.logRetentionDuration (days) to set, or None when the current one is enough.

    Enough means: at least the policy, and the oldest live snapshot's commit stays inside it
    by a margin. When raised, it leaves a policy-sized headroom so it changes rarely.
    """
    needed = float(policy_days)
    if oldest_snapshot_age_days is not None:
        needed = max(needed, oldest_snapshot_age_days + LOG_RETENTION_MARGIN_DAYS)
    if current_days >= needed:
        return None
    age = oldest_snapshot_age_days or 0.0
    return max(policy_days, math.ceil(age) + policy_days)


def vacuum_table(
    spark: SparkSession,
    settings: Settings,
    table: str,
    dry_run: bool = False,
    retention_hours: float | None = None,
) -> VacuumReport:
    """Delete the table's data files that neither the current version, the retention
    window, a live snapshot nor an in-flight write needs; log the run."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    policy = policy_for(settings, table)
    hours = policy.vacuum_retention_hours if retention_hours is None else retention_hours
    uri = table_spec(table).uri(settings)
    if not deltalog.is_table(uri):
        raise FileNotFoundError(f"table {table!r} does not exist at {uri}")
    cutoff_ms = int((started.timestamp() - hours * 3600) * 1000)

    # Snapshots first: a snapshot published after this read is of a version >= current,
    # whose files the current/window sets below keep anyway.
    snapshots = list_snapshots(settings, table)
    snapshot_paths = {deltalog.relative_path(uri, f.path) for s in snapshots for f in s.files}
    if table in dims_lineage.DIMENSIONS:
        # Versions of a dimension that live snapshots' rows were built against: read by the
        # audit of those snapshots, so kept like a snapshot's own files.
        pinned = dims_lineage.versions_in_use(settings, list_snapshots(settings))[table]
        snapshots = [*snapshots, *(_PinnedVersion(v, _version_iso(uri, v)) for v in sorted(pinned))]
        for v in sorted(pinned):
            snapshot_paths |= {f.path for f in deltalog.version_files(uri, v)}
    current_version, oldest_kept, window_paths = _window_files(uri, cutoff_ms)
    current = {f.path for f in deltalog.version_files(uri, current_version)}
    stored = _stored_files(uri)
    deletable, kept = select_deletable(stored, current, window_paths, snapshot_paths, cutoff_ms)

    if not dry_run:
        _delete(uri, deletable)
    log_days = None if dry_run else keep_log_for_snapshots(spark, settings, table, snapshots)

    report = VacuumReport(
        table=table,
        dry_run=dry_run,
        retention_hours=hours,
        current_version=current_version,
        oldest_kept_version=oldest_kept,
        files_on_storage=len(stored),
        bytes_on_storage=sum(f.size for f in stored),
        kept_current=kept["current"],
        kept_window=kept["window"],
        kept_snapshots=kept["snapshots"],
        kept_recent=kept["recent"],
        deleted_files=len(deletable),
        deleted_bytes=sum(f.size for f in deletable),
        deleted=sorted(f.path for f in deletable),
        log_retention_days_set=log_days,
        duration_s=round(time.monotonic() - clock, 3),
    )
    mlog.append(
        settings,
        mlog.MaintenanceRecord(
            table=table,
            operation=mlog.VACUUM,
            started_at=mlog.timestamp(started),
            finished_at=mlog.timestamp(datetime.now(UTC)),
            duration_s=report.duration_s,
            dry_run=dry_run,
            files_before=report.files_on_storage,
            bytes_before=report.bytes_on_storage,
            files_after=report.files_on_storage - (0 if dry_run else report.deleted_files),
            bytes_after=report.bytes_on_storage - (0 if dry_run else report.deleted_bytes),
            read_version=current_version,
            deleted_files=report.deleted_files,
            deleted_bytes=report.deleted_bytes,
            metrics={
                k: v for k, v in report.summary().items() if k.startswith(("kept_", "oldest_"))
            }
            | {"retention_hours": hours, "log_retention_days_set": log_days},
        ),
    )
    return report


def vacuum_all(
    spark: SparkSession,
    settings: Settings,
    dry_run: bool = False,
    retention_hours: float | None = None,
) -> list[VacuumReport]:
    """Vacuum every catalog table that exists."""
    from reclake.tables import TABLES

    return [
        vacuum_table(spark, settings, name, dry_run, retention_hours)
        for name, spec in TABLES.items()
        if deltalog.is_table(spec.uri(settings))
    ]


def keep_log_for_snapshots(
    spark: SparkSession, settings: Settings, table: str, snapshots: list | None = None
) -> int | None:
    """Raise the table's delta.logRetentionDuration so that Delta's log cleanup cannot drop
    the commits Spark time travel (read_spark) needs for the oldest live snapshot.

    Returns the days set, or None when the current setting is already enough.
    """
    uri = table_spec(table).uri(settings)
    policy = policy_for(settings, table)
    snapshots = list_snapshots(settings, table) if snapshots is None else snapshots
    now = datetime.now(UTC)
    ages = [
        (now - _version_time(uri, s.version, s.created_at)).total_seconds() / 86400
        for s in snapshots
    ]
    config = open_table(uri).metadata().configuration
    current = parse_retention_days(config.get(LOG_RETENTION_KEY))
    days = log_retention_to_set(current, policy.log_retention_days, max(ages, default=None))
    if days is None:
        return None
    set_table_properties(spark, uri, {LOG_RETENTION_KEY: f"interval {days} days"}, config)
    return days


@dataclass(frozen=True)
class _PinnedVersion:
    """A version vacuum keeps like a snapshot's (its files and the log to time-travel to it)."""

    version: int
    created_at: str


def _version_iso(uri: str, version: int) -> str:
    """When a version was committed, as ISO UTC (now when its log entry is gone)."""
    return _version_time(uri, version, datetime.now(UTC).isoformat()).isoformat()


def _version_time(uri: str, version: int, fallback: str) -> datetime:
    """When a version was committed (from its log entry), else the given ISO time."""
    try:
        ms = deltalog.read_commit(uri, version).timestamp_ms
    except FileNotFoundError:
        ms = 0
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else parse_utc(fallback)


def _window_files(uri: str, cutoff_ms: int) -> tuple[int, int, set[str]]:
    """Current version, oldest version kept, and every file of the versions in the window.

    The files of versions [v0, current] are those of v0 plus every file added after it, where
    v0 is the version current when the window opened; so one full state is loaded and the
    newer commits are replayed, instead of loading each version.
    """
    versions = deltalog.commit_versions(uri)
    current = versions[-1]
    oldest, added = versions[0], set()
    for v in reversed(versions):
        commit = deltalog.read_commit(uri, v)
        if commit.timestamp_ms < cutoff_ms:
            oldest = v
            break
        added.update(commit.added_paths)
        oldest = v
    files = {f.path for f in deltalog.version_files(uri, oldest)}
    return current, oldest, files | added


def _delete(uri: str, files: list[StoredFile]) -> None:
    """Delete data files, and the `.<name>.crc` checksum Hadoop's local FS writes beside them."""
    filesystem, base = lakefs.resolve(uri)
    base = base.rstrip("/")
    for f in files:
        path = f"{base}/{f.path}"
        filesystem.delete_file(path)
        folder, name = path.rsplit("/", 1)
        crc = f"{folder}/.{name}.crc"
        if filesystem.get_file_info(crc).type == pafs.FileType.File:
            filesystem.delete_file(crc)


def _stored_files(uri: str) -> list[StoredFile]:
    """Every data file under the table folder (never under `_delta_log` or hidden folders)."""
    filesystem, base = lakefs.resolve(uri)
    base = base.rstrip("/")
    stored = []
    for info in filesystem.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(base) + 1 :]
        if not is_data_path(relative):
            continue
        mtime = info.mtime_ns // 1_000_000 if info.mtime_ns is not None else 0
        stored.append(StoredFile(relative, int(info.size or 0), int(mtime)))
    return stored
