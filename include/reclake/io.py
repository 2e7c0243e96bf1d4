"""Delta Lake reads and writes: every job goes through these, so each write reports the rows
it wrote and the table version it produced."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reclake import chaos, lakefs
from reclake.config import Settings
from reclake.tables import TableSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from reclake.maintenance.deltalog import Commit

# Delta's session setting for the userMetadata of every commit (replace_where keeps it).
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


@dataclass(frozen=True)
class WriteResult:
    """What one write did: the table, the rows written and the Delta version it committed."""

    table: str
    uri: str
    rows: int
    version: int


def schema_from_ddl(spark: SparkSession, ddl: str) -> StructType:
    """A StructType from a DDL column list (keeps NOT NULL)."""
    return spark.createDataFrame([], schema=" ".join(ddl.split())).schema


def is_delta_table(spark: SparkSession, uri: str) -> bool:
    """True when a Delta table exists at the URI."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, uri)


def ensure_table(spark: SparkSession, spec: TableSpec, ddl: str, settings: Settings) -> str:
    """Create the table with its declared schema, partitioning and properties unless it
    exists; an existing table gets declared properties it lacks (one commit, once)."""
    from delta.tables import DeltaTable

    uri = spec.uri(settings)
    exists = is_delta_table(spark, uri)
    if spec.properties and exists:
        set_table_properties(spark, uri, spec.properties)
        return uri
    if not exists:
        _clear_uncommitted_log(uri)
    builder = DeltaTable.createIfNotExists(spark).location(_location(uri))
    builder = builder.addColumns(schema_from_ddl(spark, ddl))
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    for key, value in spec.properties.items():
        builder = builder.property(key, value)
    builder.execute()
    return uri


def _clear_uncommitted_log(uri: str) -> None:
    """Remove the empty `_delta_log/_staged_commits` folders that a creation killed before
    its first commit leaves in a local lake: with them Delta refuses to create the table
    ("doesn't exist"), so every re-run failed (found by `make chaos`). Only empty folders go
    (rmdir), so a concurrent creator's commit is never touched."""
    if not uri.startswith("file:"):
        return  # object stores have no empty folders
    log = Path(lakefs.local_path(uri)) / "_delta_log"
    for folder in (log / "_staged_commits", log):
        with contextlib.suppress(OSError):  # absent, or not empty: a real log
            folder.rmdir()


def set_table_properties(
    spark: SparkSession, uri: str, properties: dict[str, str], current: dict | None = None
) -> dict:
    """Give an existing Delta table these properties in one commit (retried on a concurrent
    commit), skipped when it already has them; returns the ones that changed.

    `current` is the table's configuration when the caller has just read it (saves a read).
    """
    from reclake.maintenance.retry import retry_on_conflict
    from reclake.snapshots.deltars import open_table

    # The log is read by delta-rs: no Spark job just to learn nothing needs doing.
    have = open_table(uri).metadata().configuration if current is None else current
    changed = {k: v for k, v in properties.items() if have.get(k) != v}
    if changed:
        pairs = ", ".join(f"'{_quoted(k)}' = '{_quoted(v)}'" for k, v in changed.items())
        location = _location(uri).replace("`", "``")
        statement = f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({pairs})"
        retry_on_conflict(lambda: spark.sql(statement).collect())
    return changed


def write_tag(session_metadata: str | None) -> str:
    """The userMetadata of one write: unique, after whatever the session sets there."""
    own = f"reclake-write:{uuid.uuid4().hex}"
    return f"{session_metadata} {own}" if session_metadata else own


def own_commit(uri: str, before: int | None, tag: str) -> Commit | None:
    """The commit after version `before` that carries `tag` (None: the write made none).

    The newest commit is not always the write's own: OPTIMIZE or a property change may
    have committed right after it.
    """
    from reclake.maintenance.deltalog import find_commit

    return find_commit(uri, before, lambda c: c.info.get("userMetadata") == tag)


def _location(uri: str) -> str:
    # Delta compares LOCATION with Hadoop's qualified form (file:/x): file:///x counts as a
    # different path and fails with DELTA_AMBIGUOUS_PATHS_IN_CREATE_TABLE.
    return uri.replace("file:///", "file:/", 1)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def read_table(
    spark: SparkSession, spec: TableSpec, settings: Settings, version: int | None = None
) -> DataFrame:
    """Read a table (optionally as of a version); fails clearly when it does not exist."""
    uri = spec.uri(settings)
    if not is_delta_table(spark, uri):
        raise FileNotFoundError(f"table {spec.name!r} does not exist at {uri}")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(uri)


def replace_where(
    df: DataFrame, spec: TableSpec, settings: Settings, predicate: str, rows: int | None = None
) -> WriteResult:
    """Atomically replace the rows matching `predicate` with `df` in one commit.

    This is what makes jobs idempotent: re-running an interval rewrites exactly that interval,
    whatever a failed earlier run left. `df` must only hold rows matching the predicate.
    """
    from reclake.maintenance.deltalog import latest_version
    from reclake.maintenance.retry import retry_on_conflict

    uri = spec.uri(settings)
    spark = df.sparkSession
    tag = write_tag(spark.conf.get(USER_METADATA_CONF, None))
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    writer = writer.option("userMetadata", tag)
    if spec.partition_by:
        writer = writer.partitionBy(*spec.partition_by)
    # The version and the commit's metrics are read from the log by delta-rs, in milliseconds;
    # each of Spark's history() calls ran jobs, about a second of driver time per write.
    before = latest_version(uri) if is_delta_table(spark, uri) else None
    # A concurrent commit (OPTIMIZE of the same partitions, vacuum raising the log retention)
    # fails the write with a conflict: re-running it re-reads the table, and only this
    # writer writes these rows, so the retry writes what the first attempt would have.
    retry_on_conflict(lambda: writer.save(uri))
    chaos.point("commit")
    commit = own_commit(uri, before, tag)
    if commit is None:
        # Nothing to add and nothing matched: Delta skips the commit, so no rows were written.
        return WriteResult(spec.name, uri, 0, latest_version(uri) if before is None else before)
    version = commit.version
    if rows is None:
        # From the commit's operation metrics (no re-scan of the data). A replaceWhere on a
        # non-partition column rewrites files: their kept rows count as "copied".
        metrics = commit.info.get("operationMetrics") or {}
        rows = int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))
    return WriteResult(spec.name, uri, rows, version)
