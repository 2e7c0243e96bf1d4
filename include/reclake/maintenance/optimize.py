"""Hourly OPTIMIZE: compact and Z-order only the partitions written since the last run.

Which partitions: those that received files in a commit after the last run's scanned
version (OPTIMIZE commits excluded, so compaction never re-triggers itself), within the
policy's lookback, and that now hold at least two files (one file has nothing to compact).
Nothing to do means no OPTIMIZE, hence no new table version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reclake.config import Settings
from reclake.maintenance import deltalog
from reclake.maintenance import log as mlog
from reclake.maintenance.deltalog import Commit, DataFile, Partition
from reclake.maintenance.policy import MaintenancePolicy, policy_for
from reclake.maintenance.retry import retry_on_conflict
from reclake.tables import table as table_spec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

OPTIMIZE_OPERATIONS = frozenset({"OPTIMIZE"})


@dataclass(frozen=True)
class OptimizeReport:
    """What one optimize run did; also its maintenance log record."""

    table: str
    partitions: list[dict[str, str | None]]
    skipped_reason: str | None  # why nothing ran (None when OPTIMIZE ran)
    read_version: int
    version_produced: int | None
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    zorder_by: tuple[str, ...]
    conflicts_retried: int
    duration_s: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-able one-line summary for jobs and the CLI."""
        data = asdict(self)
        data.pop("metrics")
        return data


def touched_partitions(commits: Iterable[Commit]) -> dict[str, Partition]:
    """Partition folders that received files from commits other than OPTIMIZE."""
    touched: dict[str, Partition] = {}
    for commit in commits:
        if commit.operation in OPTIMIZE_OPERATIONS:
            continue
        touched.update(commit.added_partitions)
    return touched


def worth_optimizing(
    touched: dict[str, Partition], files: Iterable[DataFile]
) -> dict[str, Partition]:
    """The touched partitions that hold two or more files now (else there is no gain)."""
    counts: dict[str, int] = {}
    for f in files:
        counts[f.folder] = counts.get(f.folder, 0) + 1
    return {folder: part for folder, part in touched.items() if counts.get(folder, 0) >= 2}


def sql_literal(value: str) -> str:
    """A Spark SQL string literal (Spark casts it to the partition column's type)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def partition_predicate(partitions: Iterable[Partition]) -> str | None:
    """A predicate selecting exactly these partitions; None for an unpartitioned table."""
    clauses = []
    for part in sorted(set(partitions), key=repr):
        if not part:
            return None
        terms = [
            f"`{col}` IS NULL" if value is None else f"`{col}` = {sql_literal(value)}"
            for col, value in part
        ]
        clauses.append("(" + " AND ".join(terms) + ")")
    return " OR ".join(clauses) if clauses else None


def optimize_table(spark: SparkSession, settings: Settings, table: str) -> OptimizeReport:
    """Compact and Z-order the table's recently written partitions; log the run."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    policy = policy_for(settings, table)
    uri = table_spec(table).uri(settings)
    if not deltalog.is_table(uri):
        raise FileNotFoundError(f"table {table!r} does not exist at {uri}")

    read_version = deltalog.latest_version(uri)
    last = mlog.last(settings, table, mlog.OPTIMIZE)
    since_version = -1
    if last is not None and last.scanned_through_version is not None:
        since_version = int(last.scanned_through_version)
    since_ms = int((started.timestamp() - policy.lookback_hours * 3600) * 1000)
    commits = [
        c for c in deltalog.commits_after(uri, since_version, since_ms) if c.version <= read_version
    ]
    files = deltalog.version_files(uri, read_version)
    chosen = worth_optimizing(touched_partitions(commits), files)
    in_scope = [f for f in files if f.folder in chosen]

    version_produced, metrics, conflicts = None, {}, 0
    if chosen:
        predicate = partition_predicate(chosen.values())
        outcome = retry_on_conflict(lambda: run_optimize(spark, uri, policy, predicate))
        metrics, conflicts = outcome.value, outcome.conflicts
        if int(metrics.get("numFilesAdded", 0) or 0) or int(metrics.get("numFilesRemoved", 0) or 0):
            version_produced = _optimize_version(uri, read_version)
    after = deltalog.version_files(uri) if version_produced is not None else files
    after_in_scope = [f for f in after if f.folder in chosen]

    report = OptimizeReport(
        table=table,
        partitions=[dict(p) for p in chosen.values()],
        skipped_reason=None if chosen else _skip_reason(commits),
        read_version=read_version,
        version_produced=version_produced,
        files_before=len(in_scope),
        bytes_before=sum(f.size for f in in_scope),
        files_after=len(after_in_scope),
        bytes_after=sum(f.size for f in after_in_scope),
        zorder_by=policy.zorder_by,
        conflicts_retried=conflicts,
        duration_s=round(time.monotonic() - clock, 3),
        metrics=metrics,
    )
    mlog.append(
        settings,
        mlog.MaintenanceRecord(
            table=table,
            operation=mlog.OPTIMIZE,
            started_at=mlog.timestamp(started),
            finished_at=mlog.timestamp(datetime.now(UTC)),
            duration_s=report.duration_s,
            files_before=report.files_before,
            bytes_before=report.bytes_before,
            files_after=report.files_after,
            bytes_after=report.bytes_after,
            partitions=report.partitions,
            read_version=read_version,
            version_produced=version_produced,
            # Commits after read_version (e.g. concurrent appends) are for the next run.
            scanned_through_version=read_version,
            conflicts_retried=conflicts,
            metrics={"zorder_by": list(policy.zorder_by), **metrics},
        ),
    )
    return report


def optimize_all(spark: SparkSession, settings: Settings) -> list[OptimizeReport]:
    """Optimize every catalog table that exists."""
    from reclake.tables import TABLES

    return [
        optimize_table(spark, settings, name)
        for name, spec in TABLES.items()
        if deltalog.is_table(spec.uri(settings))
    ]


def run_optimize(
    spark: SparkSession, uri: str, policy: MaintenancePolicy, predicate: str | None
) -> dict[str, Any]:
    """One OPTIMIZE (Z-order when the policy names columns); returns Delta's metrics."""
    from delta.tables import DeltaTable

    # Files below minFileSize are compaction candidates; bins are packed up to maxFileSize.
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(policy.target_file_bytes))
    spark.conf.set("spark.databricks.delta.optimize.minFileSize", str(policy.target_file_bytes))
    builder = DeltaTable.forPath(spark, uri).optimize()
    if predicate is not None:
        builder = builder.where(predicate)
    if policy.zorder_by:
        result = builder.executeZOrderBy(*policy.zorder_by)
    else:
        result = builder.executeCompaction()
    row = result.collect()[0]
    return row["metrics"].asDict(recursive=True)


def _optimize_version(uri: str, read_version: int) -> int | None:
    """The version our OPTIMIZE committed: the newest OPTIMIZE commit after read_version."""
    found = [
        c.version
        for c in deltalog.commits_after(uri, read_version)
        if c.operation in OPTIMIZE_OPERATIONS
    ]
    return max(found) if found else None


def _skip_reason(commits: list[Commit]) -> str:
    if not any(c.operation not in OPTIMIZE_OPERATIONS for c in commits):
        return "no commits since the last optimize"
    return "touched partitions hold at most one file"
