"""A lake can move: a copy of the lake folder, with the original deleted, keeps every snapshot
readable (pyarrow, Spark time travel, the torch reader) and protected from vacuum; a registry
written with absolute paths (before they were stored relative) is read in the moved lake and
rewritten relative (docs/reliability.md, "A lake can move")."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from deltalake import DeltaTable

from reclake import lakefs
from reclake.cli import main as cli_main
from reclake.config import Settings
from reclake.lakepath import is_absolute
from reclake.maintenance.optimize import optimize_table
from reclake.maintenance.vacuum import vacuum_table
from reclake.quality.results import ValidationResult, load_result, result_uri, save_result
from reclake.reader import SnapshotDataset
from reclake.reader import synthetic as syn
from reclake.snapshots import list_snapshots, pin, read_arrow_dataset, read_spark, resolve, store
from reclake.snapshots.manifest import read_manifest
from reclake.snapshots.state import MIGRATE, PUBLISH, SET_LATEST, Event

pytestmark = pytest.mark.integration

TABLE = syn.TABLE
SPARK_COLUMNS = ["event_id", "user_id", "item_id", "played", "sample_date"]


def lake_settings(folder: Path) -> Settings:
    return Settings(lake_root=folder.as_uri(), spark_master="local[2]", spark_shuffle_partitions=2)


def build_history(spark, settings: Settings) -> list[int]:
    """Versions 0..4 of training_samples: two appends and two Spark OPTIMIZE runs, so that
    each of versions 0 and 2 has files no later version keeps. Returns [0, 2] (to publish)."""
    uri = syn.table_uri(settings)
    v0 = syn.write_samples(uri, syn.sample_batch(600, hours=72), row_group_rows=200)
    syn.write_samples(uri, syn.sample_batch(200, offset=600, hours=72), row_group_rows=200)
    v2 = optimize_table(spark, settings, TABLE).version_produced
    syn.write_samples(uri, syn.sample_batch(100, offset=800, hours=72), row_group_rows=200)
    optimize_table(spark, settings, TABLE)
    assert v2 == 2 and DeltaTable(uri).version() == 4
    return [v0, v2]


def rows_by_reader(spark, settings: Settings, ref: str) -> dict[str, object]:
    """The snapshot's rows through each reader: pyarrow over the manifest, Spark time travel
    and the torch SnapshotDataset (event ids of every batch)."""
    snap = resolve(settings, ref)
    arrow = read_arrow_dataset(snap).to_table().sort_by("event_id").to_pylist()
    spark_rows = sorted(
        tuple(r) for r in read_spark(spark, settings, snap).select(*SPARK_COLUMNS).collect()
    )
    batches = SnapshotDataset(snap, batch_size=128, keys=["event_id"], shuffle=False)
    torch_ids = sorted(e for b in batches for e in b["event_id"])
    return {"arrow": arrow, "spark": spark_rows, "torch": torch_ids}


def on_disk(settings: Settings) -> set[str]:
    """Every data file of the table, table-relative, found independently of reclake."""
    root = Path(lakefs.local_path(syn.table_uri(settings)))
    return {
        str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def relative_files(snap) -> set[str]:
    prefix = snap.table_uri + "/"
    return {f.path.removeprefix(prefix) for f in snap.files}


def move(old: Path, new: Path) -> None:
    """Copy the lake folder elsewhere and delete the original (a move across mounts)."""
    shutil.copytree(old, new)
    shutil.rmtree(old)


def test_moved_lake_keeps_every_snapshot_readable_and_protected(spark, tmp_path):
    old, new = tmp_path / "a" / "lake", tmp_path / "b" / "moved-lake"
    before = lake_settings(old)
    snaps = [syn.publish_version(before, v) for v in build_history(spark, before)]
    expected = {s.id: rows_by_reader(spark, before, s.id) for s in snaps}
    assert all(len(r["arrow"]) == len(r["torch"]) == len(r["spark"]) for r in expected.values())

    move(old, new)
    after = lake_settings(new)

    # Nothing reclake keeps in the moved lake names the old place.
    stored = json.dumps([asdict(e) for e in store.read_events(after)])
    assert str(old) not in stored and '"table_uri"' not in stored
    for path in (new / "_reclake").rglob("*.json"):
        # Delta's commitInfo notes where a commit was made; nothing reads it back.
        if "_delta_log" not in path.parts:
            assert str(old) not in path.read_text(), path
    live = list_snapshots(after, TABLE)
    assert [s.id for s in live] == [s.id for s in snaps]
    assert all(
        f.path.startswith(after.lake_root + "/gold/training_samples/")
        for s in live
        for f in s.files
    )

    current = _current_files(after)
    snap_files = set().union(*(relative_files(s) for s in live))
    # Each snapshot holds files that only it needs (the compactions replaced them).
    assert all(relative_files(s) - current for s in live)
    files_before = on_disk(after)
    report = vacuum_table(spark, after, TABLE, retention_hours=0)
    assert report.kept_snapshots == len(snap_files - current) > 0
    assert set(report.deleted) == files_before - current - snap_files != set()
    assert on_disk(after) == current | snap_files

    for s in snaps:
        assert rows_by_reader(spark, after, s.id) == expected[s.id], s.id


def _current_files(settings: Settings) -> set[str]:
    uri = syn.table_uri(settings)
    manifest = read_manifest(uri, DeltaTable(uri).version())
    return {f.path.removeprefix(uri + "/") for f in manifest.files}


def test_registry_with_absolute_paths_is_read_in_a_moved_lake_and_rewritten_relative(
    spark, tmp_path, monkeypatch, capsys
):
    old, new = tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    before = lake_settings(old)
    versions = build_history(spark, before)
    uri = syn.table_uri(before)
    old_docs = str(old / "_reclake" / "data_docs" / "index.html")
    records = []
    for v in versions:
        save_result(before, ValidationResult(f"val-{v}", TABLE, v, True, "2026-01-01T00:00:00Z"))
        manifest = read_manifest(uri, v)
        # The record as reclake stored it before paths were relative: absolute URIs.
        records.append(
            {
                "id": f"{TABLE}-v{v}-20260101T00000{v}Z-00000{v}",
                "table": TABLE,
                "table_uri": uri,
                "version": v,
                "files": [
                    {
                        "path": f"{uri}/{f.path.removeprefix(uri + '/')}",
                        "size": f.size,
                        "partition_values": f.partition_values,
                        "num_records": f.num_records,
                    }
                    for f in manifest.files
                ],
                "row_count": manifest.row_count,
                "schema": manifest.schema,
                "partition_by": list(manifest.partition_by),
                "interval_start": None,
                "interval_end": None,
                "validation_id": f"val-{v}",
                "created_at": f"2026-01-01T00:00:0{v}Z",
                "expires_at": None,
                "pinned": False,
                "audit": None,
            }
        )
    assert all(f["path"].startswith(old.as_uri() + "/") for r in records for f in r["files"])
    for r in records:
        at = r["created_at"]
        store.append(
            before,
            [Event(PUBLISH, TABLE, r["id"], at, record=r), Event(SET_LATEST, TABLE, r["id"], at)],
        )
    # A validation result with its Data Docs link stored absolute, as validate wrote it.
    doc_uri = result_uri(before, TABLE, "val-0")
    lakefs.write_json(doc_uri, {**lakefs.read_json(doc_uri), "data_docs": old_docs})
    expected = {r["id"]: rows_by_reader(spark, before, r["id"]) for r in records}

    move(old, new)
    after = lake_settings(new)

    # Read: every old record is placed in the moved lake; vacuum keeps its files.
    live = list_snapshots(after, TABLE)
    assert [s.id for s in live] == [r["id"] for r in records]
    assert all(s.table_uri == f"{after.lake_root}/gold/training_samples" for s in live)
    assert all(f.path.startswith(s.table_uri + "/") for s in live for f in s.files)
    report = vacuum_table(spark, after, TABLE, retention_hours=0)
    current = _current_files(after)
    assert (
        report.kept_snapshots == len(set().union(*(relative_files(s) for s in live)) - current) > 0
    )
    for sid, rows in expected.items():
        assert rows_by_reader(spark, after, sid) == rows, sid
    assert load_result(after, TABLE, "val-0").data_docs == str(
        new / "_reclake/data_docs/index.html"
    )

    # Rewrite: a dry run changes nothing; the registry's next change restates its records.
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", after.lake_root)
    assert cli_main(["migrate-paths", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["snapshots"] == [r["id"] for r in records]
    assert dry["documents"] == [result_uri(after, TABLE, "val-0")]
    assert not [e for e in store.read_events(after) if e.kind == MIGRATE]

    pin(after, records[0]["id"])
    events = store.read_events(after)
    migrated = {e.snapshot_id: e.record for e in events if e.kind == MIGRATE}
    assert sorted(migrated) == sorted(r["id"] for r in records)
    for r in records:
        assert migrated[r["id"]]["table_path"] == "gold/training_samples"
        assert "table_uri" not in migrated[r["id"]]
        assert not any(is_absolute(f["path"]) for f in migrated[r["id"]]["files"])

    assert cli_main(["migrate-paths", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["snapshots"] == []  # the pin already restated them
    assert done["documents"] == [result_uri(after, TABLE, "val-0")]
    assert (
        lakefs.read_json(result_uri(after, TABLE, "val-0"))["data_docs"]
        == "_reclake/data_docs/index.html"
    )
    assert cli_main(["migrate-paths", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "documents": [],
        "dry_run": False,
        "snapshots": [],
    }

    for sid, rows in expected.items():
        assert rows_by_reader(spark, after, sid) == rows, sid
    assert resolve(after, records[0]["id"]).pinned


def test_result_documents_store_their_data_docs_link_relative(tmp_path):
    from reclake.quality.audit_results import AuditResult, audit_uri, load_audit, save_audit

    old, new = tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    before = lake_settings(old)
    page = str(old / "_reclake" / "data_docs" / "audits" / "a1.html")
    save_result(before, ValidationResult("v1", TABLE, 0, True, "c", data_docs=page))
    save_audit(before, AuditResult("a1", TABLE, 0, True, "c", 10, 0, 10, 0, data_docs=page))
    for uri in (result_uri(before, TABLE, "v1"), audit_uri(before, TABLE, "a1")):
        assert lakefs.read_json(uri)["data_docs"] == "_reclake/data_docs/audits/a1.html"

    move(old, new)
    after = lake_settings(new)
    moved = str(new / "_reclake" / "data_docs" / "audits" / "a1.html")
    assert load_result(after, TABLE, "v1").data_docs == moved
    assert load_audit(after, TABLE, "a1").data_docs == moved
