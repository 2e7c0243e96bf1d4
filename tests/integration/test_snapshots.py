"""Snapshot registry over real Delta tables written by Spark, read back by delta-rs/pyarrow."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import pytest
from deltalake import DeltaTable

from reclake import lakefs
from reclake.quality.results import ValidationResult, result_uri, save_result
from reclake.snapshots import (
    SnapshotExpired,
    SnapshotGateError,
    SnapshotNotFound,
    diff,
    expire,
    list_snapshots,
    live_files,
    live_versions,
    pin,
    publish,
    read_arrow_dataset,
    read_spark,
    resolve,
    rollback,
    unpin,
)
from reclake.tables import table

pytestmark = pytest.mark.integration

TABLE = "training_samples"
SCHEMA = (
    "event_id STRING, user_id BIGINT, item_id BIGINT, score DOUBLE, "
    "event_time TIMESTAMP, sample_date DATE"
)
DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)


def rows(day: date, scores: list[float | None], prefix: str) -> list[tuple]:
    """Tiny sample rows for one day; event ids are unique per prefix."""
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return [
        (f"{prefix}-{i}", 100 + i, 200 + i, s, start + timedelta(minutes=i), day)
        for i, s in enumerate(scores)
    ]


def write(spark, settings, data, mode="append", replace_where=None, files_per_day=1, **opts):
    """Write rows to the training_samples table with Spark; returns the new Delta version."""
    uri = table(TABLE).uri(settings)
    schema = SCHEMA + (", extra DOUBLE" if data and len(data[0]) == 7 else "")
    df = spark.createDataFrame(data, schema).repartition(files_per_day, "sample_date", "event_id")
    writer = df.write.format("delta").mode(mode).partitionBy("sample_date")
    if replace_where:
        writer = writer.option("replaceWhere", replace_where)
    for key, value in opts.items():
        writer = writer.option(key, value)
    writer.save(uri)
    return DeltaTable(uri).version()  # delta-rs: no extra Spark job


def validated(settings, version, success=True, for_table=TABLE, vid=None) -> str:
    """Persist a validation result for `version` and return its id."""
    vid = vid or f"val-v{version}-{'ok' if success else 'fail'}"
    result = ValidationResult(
        id=vid,
        table=for_table,
        version=version,
        success=success,
        created_at="2026-01-03T00:00:00Z",
        failures=[] if success else [{"expectation": "expect_column_values_to_not_be_null"}],
    )
    if for_table == TABLE:
        save_result(settings, result)
    else:
        # Misfiled under training_samples while claiming another table: the gate must notice.
        lakefs.write_json(result_uri(settings, TABLE, vid), asdict(result))
    return vid


def checksum(records: list[dict]) -> str:
    """Order-independent hash of rows (timestamps normalised to UTC)."""

    def norm(value):
        if isinstance(value, datetime):
            value = value if value.tzinfo else value.astimezone()
            return value.astimezone(UTC).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return value

    lines = sorted(json.dumps({k: norm(v) for k, v in r.items()}, sort_keys=True) for r in records)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def arrow_checksum(snap_or_ref, settings=None) -> str:
    return checksum(read_arrow_dataset(snap_or_ref, settings).to_table().to_pylist())


def spark_checksum(df) -> str:
    return checksum([r.asDict() for r in df.collect()])


@pytest.fixture
def v0(spark, settings) -> int:
    """Version 0: five rows over two daily partitions."""
    data = rows(DAY1, [0.5, 1.5, 2.5], "a") + rows(DAY2, [3.5, 4.5], "b")
    return write(spark, settings, data, files_per_day=2)


def test_publish_after_passing_validation(settings, v0):
    snap = publish(
        settings, TABLE, v0, validated(settings, v0), interval=("2026-01-01", "2026-01-03")
    )

    assert snap.id.startswith("training_samples-v0-")
    assert (snap.version, snap.row_count, snap.status, snap.pinned) == (0, 5, "live", False)
    assert snap.partition_by == ("sample_date",)
    assert (snap.interval_start, snap.interval_end) == ("2026-01-01", "2026-01-03")
    assert snap.expires_at is not None and snap.expires_at > snap.created_at
    assert {f.partition_values["sample_date"] for f in snap.files} == {"2026-01-01", "2026-01-02"}
    assert all(
        f.path.startswith(settings.lake_root + "/gold/training_samples/") for f in snap.files
    )
    assert sum(f.num_records for f in snap.files) == 5
    assert resolve(settings, "training_samples@latest") == snap
    assert resolve(settings, f"training_samples@{snap.id}") == snap

    data = read_arrow_dataset("training_samples@latest", settings).to_table()
    assert data.num_rows == 5
    assert str(data.schema.field("sample_date").type) == "date32[day]"
    assert str(data.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
    by_id = {r["event_id"]: r for r in data.to_pylist()}
    assert by_id["b-1"]["sample_date"] == DAY2 and by_id["b-1"]["score"] == 4.5
    assert by_id["a-2"]["event_time"] == datetime(2026, 1, 1, 10, 2, tzinfo=UTC)
    assert live_versions(settings, TABLE) == {0}
    assert live_files(settings, TABLE) == {f.path for f in snap.files}


def test_publish_refused_unless_validation_passed_for_that_version(spark, settings, v0):
    first = publish(settings, TABLE, v0, validated(settings, v0))
    v1 = write(spark, settings, rows(DAY2, [9.0], "c"))

    refusals = {
        "failed": validated(settings, v1, success=False),
        "other version": validated(settings, v0, vid="val-for-v0"),
        "other table": validated(settings, v1, for_table="events", vid="val-events"),
        "unknown": "no-such-validation",
    }
    messages = {}
    for case, vid in refusals.items():
        with pytest.raises(SnapshotGateError) as err:
            publish(settings, TABLE, v1, vid)
        messages[case] = str(err.value)

    assert "validation failed (expect_column_values_to_not_be_null)" in messages["failed"]
    assert "result is for version 0, not 1" in messages["other version"]
    assert "result is for table 'events'" in messages["other table"]
    assert "no validation result 'no-such-validation'" in messages["unknown"]
    assert resolve(settings, "training_samples@latest").id == first.id
    assert [s.id for s in list_snapshots(settings, TABLE)] == [first.id]


def test_publish_is_idempotent(settings, v0):
    vid = validated(settings, v0)
    first = publish(settings, TABLE, v0, vid)
    again = publish(settings, TABLE, v0, vid)

    assert again == first
    assert len(list_snapshots(settings, include_expired=True)) == 1


def test_rollback_walks_back_and_to_explicit_id(spark, settings, v0):
    s0 = publish(settings, TABLE, v0, validated(settings, v0))
    v1 = write(spark, settings, rows(DAY2, [7.0], "c"))
    s1 = publish(settings, TABLE, v1, validated(settings, v1))
    v2 = write(spark, settings, rows(DAY2, [8.0], "d"))
    s2 = publish(settings, TABLE, v2, validated(settings, v2))

    assert rollback(settings, TABLE).id == s1.id
    assert resolve(settings, "training_samples@latest").id == s1.id
    assert rollback(settings, TABLE).id == s0.id
    with pytest.raises(SnapshotNotFound, match="no live snapshot of 'training_samples' before"):
        rollback(settings, TABLE)
    assert rollback(settings, TABLE, to=s2.id).id == s2.id
    assert resolve(settings, "training_samples@latest").version == 2


def test_diff_reports_rows_schema_stats_and_files(spark, settings, v0):
    s0 = publish(settings, TABLE, v0, validated(settings, v0))
    extra = [(*r, 1.0) for r in rows(DAY2, [None, 10.5], "c")]
    v1 = write(spark, settings, extra, mergeSchema="true")
    s1 = publish(settings, TABLE, v1, validated(settings, v1))

    d = diff(settings, s0.id, "training_samples@latest")

    assert d["row_count"] == {"a": 5, "b": 7, "delta": 2}
    assert d["schema"] == {
        "added": [{"column": "extra", "type": "double"}],
        "removed": [],
        "changed": [],
    }
    assert d["columns"]["score"]["a"] == {"mean": 2.5, "min": 0.5, "max": 4.5, "null_count": 0}
    b = d["columns"]["score"]["b"]
    assert (b["min"], b["max"], b["null_count"]) == (0.5, 10.5, 1)
    assert b["mean"] == pytest.approx(23.0 / 6)
    assert d["columns"]["user_id"]["b"]["max"] == 102
    assert d["columns"]["extra"]["a"] is None
    assert d["columns"]["extra"]["b"]["null_count"] == 5
    new_files = {f.path for f in s1.files} - {f.path for f in s0.files}
    assert d["files"]["added"] == sorted(new_files) and len(new_files) >= 1
    assert d["files"]["removed"] == []
    assert d["files"]["unchanged"] == len(s0.files)


def test_expire_keeps_last_n_pinned_and_latest(spark, settings, v0):
    snaps = [publish(settings, TABLE, v0, validated(settings, v0))]
    for i in (1, 2, 3):
        v = write(spark, settings, rows(DAY2, [float(i)], f"n{i}"))
        snaps.append(publish(settings, TABLE, v, validated(settings, v)))
    pin(settings, snaps[0].id)
    now = datetime.now(UTC)

    # Not old enough yet: nothing expires although only one is kept.
    assert (
        expire(settings, TABLE, keep_last=1, older_than_days=1, now=now + timedelta(hours=12)) == []
    )
    later = now + timedelta(days=2)
    planned = expire(settings, TABLE, keep_last=1, older_than_days=1, now=later, dry_run=True)
    assert [s.id for s in planned] == [snaps[1].id, snaps[2].id]
    assert len(list_snapshots(settings, TABLE)) == 4  # dry run changed nothing

    done = expire(settings, TABLE, keep_last=1, older_than_days=1, now=later)
    assert [(s.id, s.status) for s in done] == [(snaps[1].id, "expired"), (snaps[2].id, "expired")]
    assert [s.id for s in list_snapshots(settings, TABLE)] == [snaps[0].id, snaps[3].id]
    assert len(list_snapshots(settings, TABLE, include_expired=True)) == 4
    assert live_versions(settings, TABLE) == {0, 3}
    assert live_files(settings, TABLE) == {f.path for s in (snaps[0], snaps[3]) for f in s.files}
    with pytest.raises(SnapshotExpired, match=f"snapshot {snaps[1].id} expired at "):
        resolve(settings, snaps[1].id)
    with pytest.raises(SnapshotExpired):
        read_arrow_dataset(snaps[2].id, settings)
    assert resolve(settings, snaps[1].id, allow_expired=True).status == "expired"
    # An expired snapshot cannot come back as latest.
    with pytest.raises(SnapshotExpired):
        rollback(settings, TABLE, to=snaps[1].id)

    # Unpinned, the oldest now goes too; latest (snaps[3]) survives keep_last=0.
    unpin(settings, snaps[0].id)
    assert [s.id for s in expire(settings, keep_last=0, now=later)] == [snaps[0].id]
    assert [s.id for s in list_snapshots(settings)] == [snaps[3].id]


def test_expire_past_retention_days(spark, settings, v0):
    short = publish(settings, TABLE, v0, validated(settings, v0), retention_days=1)
    v1 = write(spark, settings, rows(DAY2, [1.0], "c"))
    publish(settings, TABLE, v1, validated(settings, v1))

    assert expire(settings, keep_last=10, now=datetime.now(UTC) + timedelta(hours=1)) == []
    done = expire(settings, keep_last=10, now=datetime.now(UTC) + timedelta(days=2))
    assert [s.id for s in done] == [short.id]


def test_concurrent_publishers(spark, settings, v0):
    v1 = write(spark, settings, rows(DAY2, [1.0], "c"))
    vids = {v0: validated(settings, v0), v1: validated(settings, v1)}
    # Two publishers of different versions plus two racing on the same key.
    jobs = [(v0, vids[v0]), (v1, vids[v1]), (v1, vids[v1])]
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i, version, vid):
        barrier.wait()
        results[i] = publish(settings, TABLE, version, vid)

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results[1] == results[2]  # the duplicate publish returned the same snapshot
    snaps = list_snapshots(settings, TABLE)
    assert sorted(s.version for s in snaps) == [0, 1]
    latest = resolve(settings, "training_samples@latest")
    assert latest.id in {s.id for s in snaps}
    assert resolve(settings, "training_samples@latest") == latest  # stable on re-read


def test_resolve_errors_are_clear(settings, v0):
    with pytest.raises(SnapshotNotFound, match="no snapshot has been published for table"):
        resolve(settings, "training_samples@latest")
    publish(settings, TABLE, v0, validated(settings, v0))
    with pytest.raises(SnapshotNotFound, match="unknown snapshot 'nope'"):
        resolve(settings, "nope")
    with pytest.raises(SnapshotNotFound, match="needs a table"):
        resolve(settings, "latest")
    snap = resolve(settings, "training_samples@latest")
    with pytest.raises(SnapshotNotFound, match="belongs to table 'training_samples'"):
        resolve(settings, f"events@{snap.id}")


def test_snapshot_reads_identical_rows_after_writes_and_optimize(spark, settings, v0):
    from delta import tables as delta_tables

    snap = publish(settings, TABLE, v0, validated(settings, v0))
    before = arrow_checksum(snap)
    uri = table(TABLE).uri(settings)

    write(spark, settings, rows(DAY2, [42.0], "late"))
    write(
        spark,
        settings,
        rows(DAY1, [-1.0, -2.0], "redo"),
        mode="overwrite",
        replace_where=f"sample_date = '{DAY1.isoformat()}'",
    )
    delta_tables.DeltaTable.forPath(spark, uri).optimize().executeCompaction()

    current = DeltaTable(uri).to_pyarrow_table().to_pylist()
    assert checksum(current) != before  # the table really changed
    still_there = {f.path for f in snap.files}
    now_live = set(current_files(uri))
    assert still_there.isdisjoint(now_live)  # every snapshot file was rewritten or removed
    assert arrow_checksum(snap.id, settings) == before
    assert spark_checksum(read_spark(spark, settings, snap.id)) == before
    assert read_arrow_dataset(snap, columns=["event_id", "sample_date"]).count_rows() == 5


def current_files(uri):
    """Files of the table's current version, as the registry would record them."""
    from reclake.snapshots.manifest import read_manifest

    return [f.path for f in read_manifest(uri, DeltaTable(uri).version()).files]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `reclake snapshots ...` in-process; returns (exit code, stdout, stderr)."""
    from reclake.cli import main

    code = main(["snapshots", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli(spark, settings, v0, monkeypatch, capsys):
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    assert cli(capsys, "list") == (0, "no snapshots\n", "")

    code, _, err = cli(
        capsys,
        "publish",
        TABLE,
        "--version",
        "0",
        "--validation-id",
        validated(settings, v0, success=False),
    )
    assert code == 1 and err.startswith("error: publish of training_samples v0 refused")

    code, out, _ = cli(
        capsys, "publish", TABLE, "--version", "0", "--validation-id", validated(settings, v0)
    )
    assert code == 0 and out.startswith("published training_samples-v0-") and "(5 rows)" in out
    s0 = resolve(settings, "training_samples@latest")
    v1 = write(spark, settings, rows(DAY2, [6.5], "c"))
    code, out, _ = cli(
        capsys,
        "publish",
        TABLE,
        "--version",
        str(v1),
        "--validation-id",
        validated(settings, v1),
        "--pin",
        "--start",
        "2026-01-02",
        "--end",
        "2026-01-03",
        "--json",
    )
    s1 = json.loads(out)
    assert code == 0 and s1["pinned"] is True and s1["version"] == 1 and s1["rows"] == 6

    code, out, _ = cli(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["table", "id", "version"]
    assert s0.id in lines[1] and s1["id"] in lines[2] and "latest,pinned" in lines[2]
    listed = json.loads(cli(capsys, "list", "--json")[1])
    assert [(r["id"], r["latest"]) for r in listed] == [(s0.id, False), (s1["id"], True)]

    code, out, _ = cli(capsys, "show", "training_samples@latest")
    assert code == 0 and f"id: {s1['id']}" in out
    assert f"files: {len(resolve(settings, s1['id']).files)}" in out
    assert "interval: [2026-01-02, 2026-01-03)" in out
    assert any(line.split() == ["score", "double", "True"] for line in out.splitlines())
    shown = json.loads(cli(capsys, "show", s0.id, "--json")[1])
    assert shown["row_count"] == 5 and len(shown["files"]) == len(s0.files)

    code, out, _ = cli(capsys, "diff", s0.id, s1["id"])
    assert code == 0 and "rows: 5 -> 6 (+1)" in out and "schema: unchanged" in out
    assert json.loads(cli(capsys, "diff", s0.id, s1["id"], "--json")[1])["row_count"]["delta"] == 1

    assert cli(capsys, "rollback", TABLE)[1] == f"training_samples@latest -> {s0.id} (v0)\n"
    code, out, _ = cli(capsys, "expire", "--keep-last", "0", "--dry-run")
    assert code == 0 and out == "would expire 0 snapshot(s)\n"  # s1 is pinned, s0 is latest
    assert cli(capsys, "unpin", s1["id"])[1] == f"unpinned {s1['id']}\n"
    code, out, _ = cli(capsys, "expire", "--keep-last", "0", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)["expired"]] == [s1["id"]]

    code, out, _ = cli(capsys, "show", s1["id"])
    assert code == 0 and "status: expired" in out
    code, _, err = cli(capsys, "pin", s1["id"])
    assert code == 1 and err.startswith(f"error: snapshot {s1['id']} expired at ")
    code, _, err = cli(capsys, "show", "nope")
    assert code == 1 and err == "error: unknown snapshot 'nope'; see `reclake snapshots list`\n"
    code, _, err = cli(capsys, "publish", "no_table", "--version", "0", "--validation-id", "x")
    assert code == 1 and "unknown table 'no_table'" in err
