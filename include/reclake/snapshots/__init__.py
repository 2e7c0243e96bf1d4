"""Immutable, named snapshots of validated table versions: the registry, readers and diff.

Readers resolve `training_samples@latest` or an explicit id and get the same rows for as
long as the snapshot lives, even after compaction and vacuum (docs/snapshots.md).
"""

from reclake.snapshots.diff import diff
from reclake.snapshots.model import (
    Snapshot,
    SnapshotExpired,
    SnapshotFile,
    SnapshotGateError,
    SnapshotNotFound,
)
from reclake.snapshots.read import read_arrow_dataset, read_spark
from reclake.snapshots.registry import (
    expire,
    latest_id,
    list_snapshots,
    live_files,
    live_versions,
    pin,
    publish,
    resolve,
    rollback,
    unpin,
)

__all__ = [
    "Snapshot",
    "SnapshotExpired",
    "SnapshotFile",
    "SnapshotGateError",
    "SnapshotNotFound",
    "diff",
    "expire",
    "latest_id",
    "list_snapshots",
    "live_files",
    "live_versions",
    "pin",
    "publish",
    "read_arrow_dataset",
    "read_spark",
    "resolve",
    "rollback",
    "unpin",
]
