"""Snapshot ids, refs, records and the manifest/reader value conversions (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from reclake.snapshots.diff import column_stats, file_changes, schema_changes
from reclake.snapshots.manifest import file_uri, partition_string
from reclake.snapshots.model import (
    Snapshot,
    SnapshotFile,
    SnapshotNotFound,
    from_record,
    parse_ref,
    snapshot_id,
    to_record,
)
from reclake.snapshots.read import partition_scalar


def test_snapshot_id_is_readable_and_depends_on_the_key():
    at = datetime(2026, 11, 25, 18, 1, 2, tzinfo=UTC)
    sid = snapshot_id("training_samples", 12, "val-1", at)
    assert sid.startswith("training_samples-v12-20261125T180102Z-")
    assert len(sid.rsplit("-", 1)[1]) == 6
    assert snapshot_id("training_samples", 12, "val-1", at) == sid
    assert snapshot_id("training_samples", 12, "val-2", at) != sid


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("training_samples@latest", ("training_samples", "latest")),
        ("training_samples@abc", ("training_samples", "abc")),
        (" abc ", (None, "abc")),
    ],
)
def test_parse_ref(ref, parsed):
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["", "@latest", "t@"])
def test_parse_ref_rejects_malformed(ref):
    with pytest.raises(SnapshotNotFound):
        parse_ref(ref)


def test_record_round_trip_keeps_everything_but_state():
    snap = Snapshot(
        id="s",
        table="t",
        table_uri="file:///t",
        version=3,
        files=(SnapshotFile("file:///t/a.parquet", 10, {"d": "2026-01-01"}, 4),),
        row_count=4,
        schema="{}",
        partition_by=("d",),
        interval_start="a",
        interval_end="b",
        validation_id="v",
        created_at="c",
        expires_at=None,
        pinned=True,
        status="live",
    )
    record = to_record(snap)
    assert "status" not in record
    assert from_record(record, pinned=True, status="live") == snap
    assert from_record(record, pinned=False, status="expired").status == "expired"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (date(2026, 1, 2), "2026-01-02"),
        (True, "true"),
        (7, "7"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02 03:04:05"),
    ],
)
def test_partition_string_and_back(value, text):
    assert partition_string(value) == text


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("2026-01-02", pa.date32(), date(2026, 1, 2)),
        (
            "2026-01-02 03:04:05",
            pa.timestamp("us", tz="UTC"),
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        ("true", pa.bool_(), True),
        ("7", pa.int64(), 7),
        (None, pa.int32(), None),
    ],
)
def test_partition_scalar_types_log_strings(text, type_, value):
    scalar = partition_scalar(text, type_)
    assert scalar.type == type_ and scalar.as_py() == value


def test_file_uri_joins_relative_and_keeps_absolute():
    assert file_uri("file:///lake/t/", "d=1/a.parquet") == "file:///lake/t/d=1/a.parquet"
    assert file_uri("file:///lake/t", "s3://b/x.parquet") == "s3://b/x.parquet"


def test_schema_changes():
    a = '{"fields":[{"name":"x","type":"long"},{"name":"y","type":"string"}]}'
    b = '{"fields":[{"name":"x","type":"double"},{"name":"z","type":{"type":"array"}}]}'
    assert schema_changes(a, b) == {
        "added": [{"column": "z", "type": '{"type": "array"}'}],
        "removed": [{"column": "y", "type": "string"}],
        "changed": [{"column": "x", "a": "long", "b": "double"}],
    }


def test_column_stats_counts_nulls_and_skips_them_in_mean():
    stats = column_stats(
        pa.table(
            {
                "x": [1, None, 5],
                "e": pa.array([None, None, None], pa.float64()),
            }
        )
    )
    assert stats["x"] == {"mean": 3.0, "min": 1, "max": 5, "null_count": 1}
    assert stats["e"] == {"mean": None, "min": None, "max": None, "null_count": 3}


def test_file_changes():
    def s(*files):
        return Snapshot(
            "i",
            "t",
            "u",
            0,
            tuple(SnapshotFile(p, n, {}, None) for p, n in files),
            0,
            "{}",
            (),
            None,
            None,
            "v",
            "c",
            None,
            False,
            "live",
        )

    changes = file_changes(s(("a", 1), ("b", 2)), s(("b", 2), ("c", 4), ("d", 8)))
    assert changes == {
        "added": ["c", "d"],
        "removed": ["a"],
        "unchanged": 1,
        "bytes_added": 12,
        "bytes_removed": 1,
    }
