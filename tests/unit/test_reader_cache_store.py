"""The reader's snapshot cache on tiny inline data: keys, publish and validation, what an
interrupted or foreign entry is worth, locks, LRU eviction."""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclake.reader import cache as rc
from reclake.reader.batches import BatchSpec, to_arrays
from reclake.reader.sharding import WorkUnit
from reclake.snapshots import SnapshotFile

SPEC = BatchSpec(
    features=("count", "ratio"),
    label="played",
    id_columns=("user_id",),
    sequence="seq",
    seq_len=3,
    keys=("event_id",),
)
SCHEMA = pa.schema(
    [
        ("count", pa.int64()),
        ("ratio", pa.float64()),
        ("played", pa.bool_()),
        ("user_id", pa.int64()),
        ("seq", pa.list_(pa.int64())),
        ("event_id", pa.string()),
    ]
)


def _snapshot(snapshot_id: str = "t-v1", root: str = "file:///lake/t", size: int = 10):
    files = tuple(
        SnapshotFile(
            path=f"{root}/part-{i}.parquet",
            size=size,
            partition_values={"d": f"2024-01-0{i + 1}"},
            num_records=3,
        )
        for i in range(2)
    )
    return SimpleNamespace(id=snapshot_id, table="t", table_uri=root, version=1, files=files)


def _table(first: int, rows: int = 3) -> pa.Table:
    ids = np.arange(first, first + rows)
    return pa.table(
        {
            "count": pa.array(ids, mask=ids % 2 == 0),
            "ratio": ids / 10,
            "played": ids % 3 == 0,
            "user_id": ids,
            "seq": pa.array([list(range(i % 5)) for i in ids], pa.list_(pa.int64())),
            "event_id": [f"e{i}" for i in ids],
        },
        schema=SCHEMA,
    )


def _units(snapshot) -> list[WorkUnit]:
    return [WorkUnit(f.path, 0, 3, f) for f in snapshot.files]


def _build(cache: rc.ReaderCache, snapshot, spec: BatchSpec = SPEC) -> rc.Entry:
    """An entry holding each unit's converted rows, written one unit per add (like windows)."""
    material = rc.key(snapshot, spec)
    name = rc.entry_name(material)
    writer = cache.writer(name, material, snapshot, spec, SCHEMA, estimate_rows=6)
    assert writer is not None
    units = _units(snapshot)
    # Written in the order an epoch reads them (not file order): positions must not care.
    for unit, first in ((units[1], 100), (units[0], 0)):
        writer.add([unit], [3], to_arrays([_table(first)], spec))
    entry = writer.finish(units)
    assert entry is not None
    return entry


def test_key_covers_the_snapshot_and_the_options_that_change_the_arrays():
    base = rc.entry_name(rc.key(_snapshot(), SPEC))
    assert base.startswith("t-v1.")
    changed = [
        rc.key(_snapshot("t-v2"), SPEC),  # another snapshot (a rolled-back alias)
        rc.key(_snapshot(size=11), SPEC),  # same id, another file manifest
        rc.key(_snapshot(), replace(SPEC, features=("count",))),
        rc.key(_snapshot(), replace(SPEC, categorical=("country",))),
        rc.key(_snapshot(), replace(SPEC, seq_len=4)),
        rc.key(_snapshot(), replace(SPEC, dtype=torch.float64)),
        rc.key(_snapshot(), replace(SPEC, null_mask=True)),
        rc.key(_snapshot(), replace(SPEC, label="liked")),
        rc.key(_snapshot(), SPEC, pa.compute.field("count") < 3),
        rc.key(_snapshot(), SPEC, pa.compute.field("count") < 3.0),  # typed: not the same
    ]
    names = [rc.entry_name(k) for k in changed]
    assert base not in names and len(set(names)) == len(names)
    # The same snapshot in a moved lake (file paths relative to the table): the same entry.
    moved = rc.key(_snapshot(root="s3://bucket/elsewhere/t"), SPEC)
    assert rc.entry_name(moved) == base


def test_published_entry_maps_every_units_rows(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    entry = _build(cache, snapshot)
    units = _units(snapshot)
    assert entry.rows(units) == 6 and entry.covers(units)
    want = to_arrays([_table(0), _table(100)], SPEC)  # units in file order
    rows = entry.positions(units)
    assert not isinstance(rows, slice)  # written 1 then 0: not one range
    for name, array in want.items():
        got = entry.arrays[name][rows]
        np.testing.assert_array_equal(np.asarray(got), array, err_msg=name)
    assert (
        isinstance(entry.arrays["dense"], np.ndarray) and not entry.arrays["dense"].flags.writeable
    )
    assert entry.positions(units[1:]) == slice(0, 3)  # one unit: a slice, no index array
    assert [e.name for e in cache.entries()] == [entry.name]


def _manifest(entry: rc.Entry) -> dict:
    return json.loads((entry.path / rc.MANIFEST).read_text())


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: (e.path / rc.MANIFEST).write_text(
            json.dumps({**_manifest(e), "complete": False})
        ),
        lambda e: (e.path / "dense.bin").write_bytes(b"\0" * 8),  # truncated
        lambda e: (e.path / "label.bin").unlink(),
        lambda e: (e.path / rc.MANIFEST).write_text("{"),  # half written
        # Written in an earlier boot and never flushed: its pages may be lost.
        lambda e: (e.path / rc.MANIFEST).write_text(json.dumps({**_manifest(e), "boot_id": "x"})),
    ],
)
def test_a_damaged_entry_is_never_trusted(tmp_path, damage):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    entry = _build(cache, snapshot)
    damage(entry)
    assert cache.open(entry.name, rc.key(snapshot, SPEC), snapshot.files) is None


def test_an_entry_flushed_to_disk_survives_a_reboot(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    entry = _build(cache, snapshot)
    assert cache.sync(entry.name)
    path = entry.path / rc.MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), "boot_id": "earlier"}))
    assert cache.open(entry.name, rc.key(snapshot, SPEC), snapshot.files) is not None


def test_a_foreign_key_never_opens_an_entry(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    entry = _build(cache, snapshot)
    # The folder name of this entry but the key of another snapshot (a digest collision, or a
    # folder renamed by hand): the manifest's full key decides.
    other = rc.key(_snapshot("t-v2"), SPEC)
    assert cache.open(entry.name, other, snapshot.files) is None


def test_aborted_or_incomplete_build_leaves_nothing_and_frees_the_lock(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    material = rc.key(snapshot, SPEC)
    name = rc.entry_name(material)
    writer = cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6)
    units = _units(snapshot)
    writer.add(units[:1], [3], to_arrays([_table(0)], SPEC))
    assert writer.finish(units) is None  # one unit missing: refused, folder removed
    assert cache.entries() == [] and not list(tmp_path.glob(".build-*"))
    again = cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6)
    assert again is not None  # the lock was released
    again.add(units[:1], [3], to_arrays([_table(0)], SPEC))
    again.abort()
    assert cache.entries() == [] and not list(tmp_path.glob(".build-*"))


def _hold_lock(root: str, name: str, ready, done) -> None:
    cache = rc.ReaderCache(root, 10**9)
    fd = cache._lock(name, wait=False)
    assert fd is not None
    ready.set()
    done.wait(30)


def test_one_builder_at_a_time_across_processes(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    material = rc.key(snapshot, SPEC)
    name = rc.entry_name(material)
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), name, ready, done))
    holder.start()
    try:
        assert ready.wait(30)
        assert cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6) is None
        # remove() and clear() leave an entry being built alone.
        assert not cache.remove(name)
    finally:
        done.set()
        holder.join(30)
    # The holder exited without releasing: the kernel did, so the next builder can start.
    writer = cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6)
    assert writer is not None
    writer.abort()


def test_a_second_build_in_the_same_process_does_not_wait_for_itself(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    snapshot = _snapshot()
    material = rc.key(snapshot, SPEC)
    name = rc.entry_name(material)
    first = cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6)
    assert cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6) is None
    with pytest.raises(rc.CacheError, match="this process"):
        cache.writer(name, material, snapshot, SPEC, SCHEMA, estimate_rows=6, wait=True)
    first.abort()


def test_least_recently_used_entries_are_evicted_to_fit_the_limit(tmp_path):
    big = rc.ReaderCache(tmp_path, 10**9)
    a, b = _build(big, _snapshot("t-a")), _build(big, _snapshot("t-b"))
    size = a.manifest["bytes"]
    # Use a after b: b is now the least recently used.
    os.utime(a.path / rc.ACCESS, (2_000_000_000, 2_000_000_000))
    os.utime(b.path / rc.ACCESS, (1_000_000_000, 1_000_000_000))
    small = rc.ReaderCache(tmp_path, int(2.5 * size))
    c = _build(small, _snapshot("t-c"))  # a third entry does not fit beside both
    assert {e.name for e in small.entries()} == {a.name, c.name}
    assert not b.path.exists()
    # An entry bigger than the whole limit is not built at all.
    with pytest.raises(rc.CacheError, match="over the"):
        rc.ReaderCache(tmp_path, 100).writer(
            "x", rc.key(_snapshot("t-d"), SPEC), _snapshot("t-d"), SPEC, SCHEMA, estimate_rows=6
        )


def test_clear_removes_one_snapshot_or_everything_and_dead_builds(tmp_path):
    cache = rc.ReaderCache(tmp_path, 10**9)
    a, b = _build(cache, _snapshot("t-a")), _build(cache, _snapshot("t-b"))
    dead = tmp_path / f"{rc.BUILD_PREFIX}{a.name}-999999-deadbeef"
    dead.mkdir()
    assert cache.builds() == [(dead.name, False)]
    assert [e.name for e in cache.clear("t-a")] == [a.name]
    assert [e.name for e in cache.entries()] == [b.name] and not dead.exists()
    assert [e.name for e in cache.clear()] == [b.name]
    assert cache.entries() == []


def test_the_cache_must_be_local():
    with pytest.raises(rc.CacheError, match="local folder"):
        rc.ReaderCache("s3://bucket/cache", 10)


def test_cache_settings_come_typed_from_the_environment(tmp_path):
    from reclake.config import Settings

    default = Settings.from_env({})
    assert default.reader_cache and default.reader_cache_dir.parts[-2:] == ("reclake", "reader")
    assert Settings.from_env({"RECLAKE_READER_CACHE": "false"}).reader_cache is False
    env = {
        "RECLAKE_READER_CACHE": "true",
        "RECLAKE_READER_CACHE_DIR": str(tmp_path / "c"),
        "RECLAKE_READER_CACHE_MAX_BYTES": "123456",
    }
    s = Settings.from_env(env)
    assert s.reader_cache is True and s.reader_cache_dir == tmp_path / "c"
    assert s.reader_cache_max_bytes == 123456
    cache = rc.ReaderCache.from_settings(s)
    assert cache.root == tmp_path / "c" and cache.max_bytes == 123456
