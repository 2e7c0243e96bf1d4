"""How well a table's layout lets a query skip files: which files a predicate on one column
can touch according to the Delta min/max statistics, and how many files Spark's scan really
read (the numFiles metric of its scan nodes). Used by the maintenance benchmark and tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from reclake.snapshots.deltars import open_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class FilesRead:
    """Files a lookup must open, against the whole table and against the partitions it hits."""

    read: int
    table_files: int
    partition_files: int  # files in the partitions the query's partition filter keeps

    @property
    def of_table(self) -> float:
        """Fraction of all the table's files."""
        return self.read / self.table_files if self.table_files else 0.0

    @property
    def of_partitions(self) -> float:
        """Fraction of the files in the partitions the query touches."""
        return self.read / self.partition_files if self.partition_files else 0.0


def file_stats(uri: str, version: int | None = None) -> pa.Table:
    """One row per data file of a version: path, size, partition values, min/max stats."""
    return pa.table(open_table(uri, version).get_add_actions(flatten=True))


def files_per_partition(stats: pa.Table, partition_column: str) -> dict[Any, int]:
    """Number of files in each partition value."""
    counts: dict[Any, int] = {}
    for value in stats[f"partition.{partition_column}"].to_pylist():
        counts[value] = counts.get(value, 0) + 1
    return counts


def overlapping(
    stats: pa.Table,
    column: str,
    low: Any,
    high: Any,
    partition_column: str | None = None,
    partitions: set[Any] | None = None,
) -> FilesRead:
    """Files whose [min, max] of `column` meets [low, high], within `partitions` if given.

    A file without statistics for the column counts as read, as it does for Delta.
    """
    mins = stats[f"min.{column}"].to_pylist()
    maxs = stats[f"max.{column}"].to_pylist()
    if partitions is None or partition_column is None:
        in_scope = np.ones(stats.num_rows, dtype=bool)
    else:
        values = stats[f"partition.{partition_column}"].to_pylist()
        in_scope = np.array([v in partitions for v in values], dtype=bool)
    hit = np.array(
        [
            lo is None or hi is None or (lo <= high and hi >= low)
            for lo, hi in zip(mins, maxs, strict=True)
        ],
        dtype=bool,
    )
    return FilesRead(int((hit & in_scope).sum()), stats.num_rows, int(in_scope.sum()))


def scanned_files(df: DataFrame) -> int:
    """Run the query and return the files its scans read (Spark's numFiles scan metric)."""
    df.collect()
    plan = df._jdf.queryExecution().executedPlan()
    return sum(int(node.metrics().get("numFiles").get().value()) for node in _scans(plan))


def _scans(plan: Any) -> list[Any]:
    """File scan nodes of an executed JVM plan, looking through adaptive execution."""
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.finalPhysicalPlan()
    found = [plan] if plan.metrics().contains("numFiles") else []
    children = plan.children()
    for i in range(children.size()):
        found.extend(_scans(children.apply(i)))
    return found
