"""Snapshot ids, refs, records and the manifest/reader value conversions (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from reclake.lakepath import OutsideLake
from reclake.snapshots.diff import column_stats, file_changes, schema_changes
from reclake.snapshots.manifest import file_uri, partition_string
from reclake.snapshots.model import (
    Snapshot,
    SnapshotFile,
    SnapshotNotFound,
    from_record,
    is_stored_relative,
    parse_ref,
    snapshot_id,
    stored_record,
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


def snapshot(lake: str = "file:///lake", table: str = "t", **kw) -> Snapshot:
    """A snapshot of table folder `table` in `lake`, with one file."""
    values = {
        "id": "s",
        "table": "t",
        "table_uri": f"{lake}/{table}",
        "version": 3,
        "files": (SnapshotFile(f"{lake}/{table}/d=1/a.parquet", 10, {"d": "2026-01-01"}, 4),),
        "row_count": 4,
        "schema": "{}",
        "partition_by": ("d",),
        "interval_start": "a",
        "interval_end": "b",
        "validation_id": "v",
        "created_at": "c",
        "expires_at": None,
        "pinned": True,
        "status": "live",
    }
    return Snapshot(**{**values, **kw})


def test_record_round_trip_keeps_everything_but_state():
    snap = snapshot()
    record = to_record(snap, "file:///lake")
    assert "status" not in record
    assert from_record(record, "file:///lake", pinned=True, status="live") == snap
    assert from_record(record, "file:///lake", pinned=False, status="expired").status == "expired"


def test_record_stores_paths_relative_and_resolves_them_in_the_reading_lake():
    record = to_record(snapshot(), "file:///lake/")
    assert "table_uri" not in record
    assert record["table_path"] == "t"
    assert [f["path"] for f in record["files"]] == ["d=1/a.parquet"]
    # The same record read from a copy of the lake in a bucket: every path follows the lake.
    moved = from_record(record, "s3a://bucket/copy", pinned=True, status="live")
    assert moved == snapshot("s3a://bucket/copy")


def test_old_absolute_record_is_placed_in_a_moved_lake_by_its_catalog_path():
    # A record as reclake wrote it before paths were relative: absolute table and file URIs
    # of the lake it was published in, which has since moved.
    old = to_record(snapshot("file:///old/lake", "gold/training_samples"), "file:///old/lake")
    old.pop("table_path")
    old["table"] = "training_samples"
    old["table_uri"] = "file:///old/lake/gold/training_samples"
    old["files"][0]["path"] = "file:///old/lake/gold/training_samples/d=1/a.parquet"
    assert not is_stored_relative(old)

    migrated = stored_record(old, "s3://bucket/lake")
    assert is_stored_relative(migrated) and "table_uri" not in migrated
    assert migrated["table_path"] == "gold/training_samples"
    assert [f["path"] for f in migrated["files"]] == ["d=1/a.parquet"]
    snap = from_record(old, "s3a://bucket/lake", pinned=False, status="live")
    assert snap.table_uri == "s3a://bucket/lake/gold/training_samples"
    assert [f.path for f in snap.files] == ["s3a://bucket/lake/gold/training_samples/d=1/a.parquet"]


def test_old_record_of_an_unknown_table_outside_the_lake_is_refused():
    old = {**to_record(snapshot("file:///old"), "file:///old"), "table": "not_in_catalog"}
    old["table_uri"] = "file:///old/t"
    old.pop("table_path")
    old["files"] = [{**old["files"][0], "path": "file:///old/t/d=1/a.parquet"}]
    # Inside the reading lake it is still placed; elsewhere nothing says where it belongs.
    assert stored_record(old, "file:///old")["table_path"] == "t"
    with pytest.raises(OutsideLake, match="snapshot s cannot be placed in the lake"):
        stored_record(old, "file:///new")


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


def test_file_uri_joins_relative_and_refuses_files_outside_the_table():
    assert file_uri("file:///lake/t/", "d=1/a.parquet") == "file:///lake/t/d=1/a.parquet"
    assert file_uri("file:///lake/t", "/lake/t/d=1/a.parquet") == "file:///lake/t/d=1/a.parquet"
    with pytest.raises(OutsideLake):
        file_uri("file:///lake/t", "s3://b/x.parquet")  # a shallow clone's file
    with pytest.raises(OutsideLake):
        file_uri("file:///lake/t", "../u/x.parquet")


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
