"""Reading a snapshot: JVM-free through pyarrow over exactly its manifest, or through Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds

from reclake import lakefs
from reclake.config import Settings, load_settings
from reclake.snapshots.model import Snapshot, SnapshotExpired, SnapshotFile
from reclake.snapshots.registry import resolve

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def arrow_schema(snapshot: Snapshot) -> pa.Schema:
    """The snapshot's Delta schema as an Arrow schema (partition columns included)."""
    from deltalake import Schema

    return pa.schema(Schema.from_json(snapshot.schema).to_arrow())


def partition_scalar(value: str | None, type_: pa.DataType) -> pa.Scalar:
    """A partition value from its Delta log string form, typed per the schema."""
    if value is None:
        return pa.scalar(None, type=type_)
    if pa.types.is_timestamp(type_) and type_.tz is not None:
        # Delta writes timestamp partitions in UTC without an offset.
        return pa.scalar(value).cast(pa.timestamp(type_.unit)).cast(type_)
    return pa.scalar(value).cast(type_)


def partition_expression(file: SnapshotFile, schema: pa.Schema) -> ds.Expression:
    """The expression pyarrow uses to fill a file's partition columns (those in `schema`)."""
    expr = ds.scalar(True)
    for name, value in file.partition_values.items():
        if name not in schema.names:
            continue
        if value is None:
            expr = expr & ds.field(name).is_null()
        else:
            expr = expr & (ds.field(name) == partition_scalar(value, schema.field(name).type))
    return expr


def read_arrow_dataset(
    ref_or_snapshot: str | Snapshot,
    settings: Settings | None = None,
    *,
    columns: list[str] | None = None,
    filter: ds.Expression | None = None,
) -> ds.Dataset:
    """A pyarrow Dataset over exactly the snapshot's files, typed per its schema.

    `filter` may only use the selected `columns` (all columns when None).
    """
    snap = ref_or_snapshot
    if not isinstance(snap, Snapshot):
        snap = resolve(settings or load_settings(), snap)
    elif not snap.live:
        raise SnapshotExpired(f"snapshot {snap.id} expired: its files may be vacuumed")
    schema = arrow_schema(snap)
    if columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise KeyError(f"{snap.id} has no column(s) {missing}; columns: {schema.names}")
        schema = pa.schema([schema.field(c) for c in columns])
    filesystem, paths = _filesystem_paths(snap)
    dataset = ds.FileSystemDataset.from_paths(
        paths,
        schema=schema,
        format=ds.ParquetFileFormat(),
        filesystem=filesystem,
        partitions=[partition_expression(f, schema) for f in snap.files],
    )
    return dataset if filter is None else dataset.filter(filter)


def read_spark(spark: SparkSession, settings: Settings, ref: str | Snapshot) -> DataFrame:
    """A Spark DataFrame of exactly the snapshot's table version (Delta time travel)."""
    snap = ref if isinstance(ref, Snapshot) else resolve(settings, ref)
    return spark.read.format("delta").option("versionAsOf", snap.version).load(snap.table_uri)


def _filesystem_paths(snap: Snapshot) -> tuple[object, list[str]]:
    """One filesystem for the table and each file's path on it (resolved once, not per file)."""
    filesystem, base = lakefs.resolve(snap.table_uri)
    prefix = snap.table_uri.rstrip("/") + "/"
    paths = []
    for f in snap.files:
        if f.path.startswith(prefix):
            paths.append(base.rstrip("/") + "/" + f.path[len(prefix) :])
        else:
            paths.append(lakefs.resolve(f.path)[1])
    return filesystem, paths
