"""Files a one-column predicate must read according to Delta min/max statistics."""

from __future__ import annotations

import pyarrow as pa
import pytest

from reclake.maintenance.skipping import FilesRead, files_per_partition, overlapping


def stats() -> pa.Table:
    """Four files over two dates, shaped like delta-rs flattened add actions."""
    return pa.table(
        {
            "partition.event_date": ["d1", "d1", "d2", "d2"],
            "min.user_id": [1, 50, 1, None],  # the last file has no statistics
            "max.user_id": [49, 99, 99, None],
        }
    )


@pytest.mark.parametrize(
    ("low", "high", "dates", "read", "in_scope"),
    [
        (10, 10, None, 3, 4),  # file 2 (50..99) is skipped; no stats means read
        (49, 50, None, 4, 4),  # a range on the boundary touches both d1 files
        (200, 300, None, 1, 4),  # outside every range: only the stat-less file
        (60, 60, {"d1"}, 1, 2),  # partition filter: only d1's files are in scope
    ],
)
def test_overlapping(low, high, dates, read, in_scope):
    found = overlapping(stats(), "user_id", low, high, "event_date", dates)
    assert found == FilesRead(read, 4, in_scope)


def test_fractions_of_table_and_of_touched_partitions():
    found = FilesRead(read=1, table_files=10, partition_files=4)
    assert (found.of_table, found.of_partitions) == (0.1, 0.25)
    assert FilesRead(0, 0, 0).of_table == 0.0 == FilesRead(0, 0, 0).of_partitions


def test_files_per_partition():
    assert files_per_partition(stats(), "event_date") == {"d1": 2, "d2": 2}
