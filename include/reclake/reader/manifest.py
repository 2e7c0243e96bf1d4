"""From a snapshot's manifest to Parquet reads, without Spark or a JVM: the Arrow schema, the
work units (file, row group) that may hold rows matching a filter, and reading one unit.

Only the files the snapshot lists are read (never a directory listing), so later writes,
compaction or vacuum of the table cannot change what a snapshot returns."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from reclake import lakefs
from reclake.config import Settings, load_settings
from reclake.reader.sharding import WorkUnit
from reclake.snapshots import Snapshot, SnapshotExpired, resolve
from reclake.snapshots.read import arrow_schema, partition_expression

__all__ = ["arrow_schema", "count_rows", "list_units", "load_snapshot", "read_units"]

PARQUET = ds.ParquetFileFormat()


def load_snapshot(ref_or_snapshot: str | Snapshot, settings: Settings | None = None) -> Snapshot:
    """The live Snapshot a ref names ("training_samples@latest", "<id>"), or the one given.

    Raises SnapshotNotFound / SnapshotExpired from the registry.
    """
    if isinstance(ref_or_snapshot, str):
        return resolve(settings or load_settings(), ref_or_snapshot)
    if not ref_or_snapshot.live:
        raise SnapshotExpired(f"snapshot {ref_or_snapshot.id} expired: its files may be vacuumed")
    return ref_or_snapshot


@lru_cache(maxsize=16)
def _filesystem(root: str) -> pafs.FileSystem:
    # One filesystem per scheme + bucket: building an S3 client per file would be slow.
    return lakefs.resolve(root + "/")[0]


def _file(uri: str) -> tuple[pafs.FileSystem, str]:
    parts = urlsplit(uri)
    return _filesystem(f"{parts.scheme}://{parts.netloc}"), lakefs.resolve(uri)[1]


def fragment(unit: WorkUnit, schema: pa.Schema) -> ds.ParquetFileFragment:
    """A Parquet fragment reading just this unit's row group, with its partition values."""
    filesystem, path = _file(unit.path)
    return PARQUET.make_fragment(
        path,
        filesystem,
        partition_expression=partition_expression(unit.file, schema),
        row_groups=[unit.row_group],
    )


def list_units(snapshot: Snapshot, schema: pa.Schema, filter: Any = None) -> tuple[WorkUnit, ...]:
    """Every (file, row group) of the snapshot that may match `filter`, in manifest order.

    Files are pruned by their partition values and row groups by their Parquet statistics,
    so a time-range filter skips whole files and row groups without reading them.
    """
    units: list[WorkUnit] = []
    for file in snapshot.files:
        filesystem, path = _file(file.path)
        whole = PARQUET.make_fragment(
            path, filesystem, partition_expression=partition_expression(file, schema)
        )
        dataset = ds.FileSystemDataset([whole], schema, PARQUET, filesystem)
        for frag in dataset.get_fragments(filter=filter):  # partition pruning
            for group in frag.split_by_row_group(filter=filter, schema=schema):
                info = group.row_groups[0]
                units.append(WorkUnit(file.path, info.id, info.num_rows, file))
    return tuple(units)


def read_units(
    units: Sequence[WorkUnit], schema: pa.Schema, columns: Sequence[str], filter: Any = None
) -> list[pa.Table]:
    """The projected, filtered rows of each unit (one Arrow table per unit)."""
    return [
        fragment(u, schema).to_table(schema=schema, columns=list(columns), filter=filter)
        for u in units
    ]


def count_rows(units: Sequence[WorkUnit], schema: pa.Schema, filter: Any = None) -> int:
    """Rows of the units matching `filter`; footer counts alone when there is no filter."""
    if filter is None:
        return sum(u.num_rows for u in units)
    return sum(
        fragment(u, schema).scanner(schema=schema, columns=[], filter=filter).count_rows()
        for u in units
    )
