"""A table version's exact file manifest, read JVM-free from its Delta log with delta-rs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from reclake import lakefs, lakepath
from reclake.snapshots.deltars import open_table
from reclake.snapshots.model import SnapshotFile, SnapshotGateError


@dataclass(frozen=True)
class Manifest:
    """What a snapshot records about one table version."""

    version: int
    files: tuple[SnapshotFile, ...]
    row_count: int
    schema: str
    partition_by: tuple[str, ...]


def partition_string(value: Any) -> str | None:
    """A typed partition value in the Delta log's string form (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # Delta writes timestamp partitions as UTC 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def file_uri(table_uri: str, path: str) -> str:
    """Absolute URI of a data file from its path in the log (relative, or absolute inside the
    table); raises lakepath.OutsideLake for a file outside the table (a shallow clone's):
    snapshots store table-relative paths, so that they move with the lake."""
    if lakepath.is_absolute(path):
        path = lakepath.relative_to(table_uri, path)
    return lakepath.join(table_uri, path)


def read_manifest(table_uri: str, version: int) -> Manifest:
    """The files, row count, schema and partitioning of exactly `version` of the table."""
    from deltalake.exceptions import DeltaError

    try:
        dt = open_table(table_uri, version)
    except DeltaError as exc:
        raise SnapshotGateError(f"cannot load version {version} of {table_uri}: {exc}") from exc
    _check_plain_parquet(dt, table_uri, version)
    partition_by = tuple(dt.metadata().partition_columns)
    actions = pa.table(dt.get_add_actions(flatten=False)).to_pylist()
    try:
        files = tuple(
            SnapshotFile(
                path=file_uri(table_uri, a["path"]),
                size=int(a["size_bytes"]),
                partition_values={
                    k: partition_string((a.get("partition") or {}).get(k)) for k in partition_by
                },
                num_records=None if a.get("num_records") is None else int(a["num_records"]),
            )
            for a in actions
        )
    except lakepath.OutsideLake as exc:
        raise SnapshotGateError(
            f"{table_uri} v{version} names a file outside the table: {exc}"
        ) from None
    files = tuple(sorted(files, key=lambda f: f.path))
    return Manifest(
        version=version,
        files=files,
        row_count=_row_count(files),
        schema=dt.schema().to_json(),
        partition_by=partition_by,
    )


def _row_count(files: tuple[SnapshotFile, ...]) -> int:
    """Sum of the log's per-file record counts; Parquet footers where stats are missing."""
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        if f.num_records is not None:
            total += f.num_records
            continue
        filesystem, path = lakefs.resolve(f.path)
        total += pq.read_metadata(path, filesystem=filesystem).num_rows
    return total


def _check_plain_parquet(dt: Any, table_uri: str, version: int) -> None:
    """Manifests list plain Parquet files: refuse column mapping and deletion vectors."""
    mode = dt.metadata().configuration.get("delta.columnMapping.mode", "none")
    if mode not in ("none", None):
        raise SnapshotGateError(
            f"{table_uri} v{version} uses column mapping ({mode}); snapshots need plain columns"
        )
    features = set(dt.protocol().reader_features or [])
    if "deletionVectors" in features and pa.table(dt.deletion_vectors()).num_rows:
        raise SnapshotGateError(
            f"{table_uri} v{version} has deletion vectors; purge them (REORG TABLE ... "
            "APPLY (PURGE)) before publishing"
        )
