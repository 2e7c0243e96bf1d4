"""Snapshot-aware vacuum on real Delta tables: a live snapshot survives compaction and a
zero-retention vacuum, the dry run lists exactly what goes, expiry releases the files."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from reclake.io import set_table_properties
from reclake.maintenance import log as mlog
from reclake.maintenance.optimize import optimize_table
from reclake.maintenance.vacuum import (
    StoredFile,
    log_retention_to_set,
    parse_retention_days,
    select_deletable,
    vacuum_table,
)
from reclake.quality.results import ValidationResult, save_result
from reclake.snapshots import SnapshotExpired, expire, publish, read_arrow_dataset, read_spark
from reclake.snapshots import resolve as resolve_snapshot
from reclake.tables import table

TABLE = "events"
SCHEMA = "event_id STRING, user_id BIGINT, item_id BIGINT, event_date DATE"
D1, D2 = date(2026, 1, 1), date(2026, 1, 2)
COLUMNS = ["event_id", "user_id", "item_id", "event_date"]


def write(spark, settings, day, batch, n=5, replace=False) -> int:
    """Append (or replace the day's partition with) `n` events; returns the new version."""
    uri = table(TABLE).uri(settings)
    rows = [(f"{batch}-{i}", i, 100 + i, day) for i in range(n)]
    writer = spark.createDataFrame(rows, SCHEMA).repartition(2).write.format("delta")
    if replace:
        writer = writer.mode("overwrite").option("replaceWhere", f"event_date = '{day}'")
    else:
        writer = writer.mode("append")
    writer.partitionBy("event_date").save(uri)
    return DeltaTable(uri).version()


def snapshot_of(settings, version: int):
    """Publish `version` behind a saved passing validation result."""
    vid = f"val-v{version}"
    save_result(
        settings,
        ValidationResult(
            id=vid, table=TABLE, version=version, success=True, created_at="2026-01-03T00:00:00Z"
        ),
    )
    return publish(settings, TABLE, version, vid)


def checksum(rows) -> str:
    """Order-independent digest of rows given as tuples of COLUMNS."""
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()


def arrow_checksum(snap) -> str:
    data = read_arrow_dataset(snap, columns=COLUMNS).to_table().to_pylist()
    return checksum(tuple(r[c] for c in COLUMNS) for r in data)


def spark_checksum(spark, settings, snap) -> str:
    rows = read_spark(spark, settings, snap).select(*COLUMNS).collect()
    return checksum(tuple(r) for r in rows)


def parquet_on_disk(settings) -> set[str]:
    """Every data file under the table folder, found independently with os.walk."""
    root = Path(table(TABLE).uri(settings).removeprefix("file://"))
    return {
        str(Path(d, f).relative_to(root))
        for d, _, names in os.walk(root)
        if "_delta_log" not in d
        for f in names
        if f.endswith(".parquet")
    }


def relative(settings, uris) -> set[str]:
    """Table-relative paths of file URIs or plain paths (delta-rs file_uris gives paths)."""
    folder = "/" + table(TABLE).path + "/"
    return {u.split(folder, 1)[1] for u in uris}


@pytest.mark.integration
def test_vacuum_keeps_live_snapshot_files_and_reclaims_them_after_expiry(spark, settings):
    uri = table(TABLE).uri(settings)
    write(spark, settings, D1, "a")
    v1 = write(spark, settings, D2, "b")
    old = snapshot_of(settings, v1)
    expected = (arrow_checksum(old), spark_checksum(spark, settings, old))
    assert expected[0] == expected[1]

    write(spark, settings, D1, "c")  # newer versions: append, compact, overwrite a day
    optimize_table(spark, settings, TABLE)
    write(spark, settings, D2, "e", replace=True)
    optimize_table(spark, settings, TABLE)

    # Default retention (168 h): every version is recent, nothing may go.
    assert vacuum_table(spark, settings, TABLE, dry_run=True).deleted == []

    current = relative(settings, DeltaTable(uri).file_uris())
    snap_files = relative(settings, (f.path for f in old.files))
    on_disk = parquet_on_disk(settings)
    dry = vacuum_table(spark, settings, TABLE, dry_run=True, retention_hours=0)
    assert set(dry.deleted) == on_disk - current - snap_files != set()
    assert dry.deleted_bytes > 0 and parquet_on_disk(settings) == on_disk  # nothing deleted
    assert dry.kept_snapshots == len(snap_files - current) > 0

    done = vacuum_table(spark, settings, TABLE, retention_hours=0)
    assert done.deleted == dry.deleted and done.deleted_bytes == dry.deleted_bytes
    assert parquet_on_disk(settings) == current | snap_files
    assert (arrow_checksum(old), spark_checksum(spark, settings, old)) == expected
    assert spark.read.format("delta").load(uri).count() == 15  # D1: a + c, D2: e (5 each)
    # Spark time travel to the snapshot needs the Delta log: vacuum lengthened its retention.
    config = DeltaTable(uri).metadata().configuration
    assert parse_retention_days(config["delta.logRetentionDuration"]) >= 60
    logged = mlog.records(settings, TABLE, mlog.VACUUM)
    assert [(r.dry_run, r.deleted_files) for r in logged[:2]] == [
        (False, len(done.deleted)),
        (True, len(dry.deleted)),
    ]

    # A newer snapshot becomes latest; the old one expires and its files are released.
    new = snapshot_of(settings, DeltaTable(uri).version())
    assert [s.id for s in expire(settings, TABLE, keep_last=0)] == [old.id]
    again = vacuum_table(spark, settings, TABLE, retention_hours=0)
    assert set(again.deleted) == snap_files - current != set()
    assert parquet_on_disk(settings) == current
    with pytest.raises(SnapshotExpired):
        resolve_snapshot(settings, old.id)
    assert arrow_checksum(new) == spark_checksum(spark, settings, new)


def test_set_table_properties_commits_only_what_differs(spark, settings):
    write(spark, settings, D1, "a")
    uri = table(TABLE).uri(settings)
    before = DeltaTable(uri).version()
    wanted = {"delta.logRetentionDuration": "interval 45 days", "reclake.note": "it's \\ kept"}
    assert set_table_properties(spark, uri, wanted) == wanted
    after = DeltaTable(uri)
    assert after.version() == before + 1  # one commit for both
    assert {k: after.metadata().configuration[k] for k in wanted} == wanted
    # Already there: nothing to change, no commit.
    assert set_table_properties(spark, uri, wanted) == {}
    assert DeltaTable(uri).version() == before + 1


def test_select_deletable_keeps_every_reason():
    stored = [
        StoredFile("a", 10, 0),  # current version
        StoredFile("b", 10, 0),  # a version within the window
        StoredFile("c", 10, 0),  # a live snapshot
        StoredFile("d", 10, 5_000),  # written within the window (maybe uncommitted)
        StoredFile("e", 10, 0),  # nobody's: deleted
    ]
    deletable, kept = select_deletable(stored, {"a"}, {"b"}, {"c"}, cutoff_ms=1_000)
    assert [f.path for f in deletable] == ["e"]
    assert kept == {"current": 1, "window": 1, "snapshots": 1, "recent": 1}


@pytest.mark.parametrize(
    ("current", "policy", "age", "expected"),
    [
        (30, 60, None, 60),  # below policy: raise to policy
        (60, 60, None, None),  # at policy, no snapshots: fine
        (60, 60, 10.0, None),  # snapshot well inside the retention
        (60, 60, 55.0, 115),  # snapshot near the edge: policy headroom beyond its age
        (400, 60, 200.5, None),  # long enough already
    ],
)
def test_log_retention_follows_the_oldest_snapshot(current, policy, age, expected):
    assert log_retention_to_set(current, policy, age) == expected


@pytest.mark.parametrize(
    ("text", "days"),
    [(None, 30.0), ("interval 60 days", 60.0), ("interval 2 weeks", 14.0), ("48 hours", 2.0)],
)
def test_parse_retention_days(text, days):
    assert parse_retention_days(text) == days
