"""The reader's snapshot cache over real published snapshots (Delta written by deltalake,
published through the registry): cached epochs give the batches Parquet gives, batch for batch,
across ranks, workers, epochs and resumes; one builder among concurrent processes; an
interrupted build is never trusted; the key follows the snapshot and the options; LRU
eviction; `reclake cache`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from torch.utils.data import DataLoader

from reclake.cli import main as cli
from reclake.config import Settings
from reclake.reader import SnapshotDataset, SnapshotLoader
from reclake.reader import synthetic as syn
from reclake.reader.cache import BUILD_PREFIX, ReaderCache
from reclake.snapshots import rollback
from tests.integration.test_reader import ROWS, _publish, _reader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """One published snapshot shared by the tests that only read it."""
    settings = Settings(lake_root=(tmp_path_factory.mktemp("cache") / "lake").as_uri())
    return settings, _publish(settings)


def _epoch(dataset: SnapshotDataset, workers: int = 0, loader: str = "snapshot") -> list[dict]:
    if not workers:
        return list(dataset)
    if loader == "snapshot":
        return list(SnapshotLoader(dataset, num_workers=workers, bundle=3))
    return list(DataLoader(dataset, batch_size=None, num_workers=workers))


def _assert_same(got: list[dict], want: list[dict]) -> None:
    """Batch for batch: the same keys in the same order, equal values and dtypes."""
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert list(a) == list(b), i
        for key in a:
            if isinstance(b[key], torch.Tensor):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), (i, key)
            elif isinstance(b[key], np.ndarray):
                assert a[key].tolist() == b[key].tolist(), (i, key)
            else:
                assert a[key] == b[key], (i, key)


@pytest.mark.parametrize(
    "world_size, workers, loader",
    [
        (1, 0, None),  # epoch 0 writes the cache as it reads Parquet
        (2, 0, None),  # rank 0 builds the whole entry first, rank 1 finds it
        (1, 2, "dataloader"),  # one worker builds, the other reads Parquet meanwhile
        (2, 2, "snapshot"),  # SnapshotLoader bundles, ranks x workers
    ],
)
def test_cached_epochs_give_the_parquet_batches(lake, tmp_path, world_size, workers, loader):
    _, snap = lake
    options = {"seed": 5, "categorical": ["user_country"], "null_mask": True}
    for rank in range(world_size):
        shard = {"rank": rank, "world_size": world_size, **options}
        plain, cached = _reader(snap, **shard), _reader(snap, cache_dir=tmp_path, **shard)
        for epoch in (0, 1, 2):
            plain.set_epoch(epoch)
            cached.set_epoch(epoch)
            _assert_same(_epoch(cached, workers, loader), _epoch(plain, workers, loader))
            if not workers:
                built = rank == 0 and epoch == 0
                assert cached.last_source == ("build" if built else "cache")
        assert cached.is_cached()
    assert len(ReaderCache(tmp_path, 10**9).entries()) == 1  # shared by every stream


@pytest.mark.parametrize("prebuilt", [True, False])  # resume from the cache / while building it
@pytest.mark.parametrize("consumed", [0, 3, 17, 39])
def test_resume_from_the_cache_gives_the_remaining_parquet_batches(
    lake, tmp_path, consumed, prebuilt
):
    _, snap = lake
    full = list(_reader(snap, seed=1))
    cached = _reader(snap, seed=1, cache_dir=tmp_path)
    if prebuilt:
        assert cached.build_cache()
    batches = iter(cached)
    head = [next(batches) for _ in range(consumed)]
    state = cached.state_dict()
    assert state["batches"] == [consumed]
    batches.close()  # a stopped epoch abandons a cache it was writing
    resumed = _reader(snap, seed=1, cache_dir=tmp_path)
    resumed.load_state_dict(state)
    _assert_same(head + list(resumed), full)
    if prebuilt:
        assert resumed.last_source == "cache"
    elif consumed < 39:
        # The stopped epoch had not converted every unit: it left no entry, the resumed
        # epoch built one (before reading, as it skips windows).
        assert resumed.last_source == "build"
    else:
        # At the last batch the read-ahead may already have written every unit.
        assert resumed.last_source in {"build", "cache"}


def test_resume_with_two_workers_from_the_cache(lake, tmp_path):
    _, snap = lake
    cached = _reader(snap, seed=2, cache_dir=tmp_path)
    cached.build_cache()
    loader = SnapshotLoader(cached, num_workers=2)
    consumed = []
    for batch in loader:
        consumed += list(batch["event_id"])
        if len(consumed) >= 640:
            break
    state = loader.state_dict()
    again = SnapshotLoader(_reader(snap, seed=2, cache_dir=tmp_path), num_workers=2)
    again.load_state_dict(state)
    rest = [e for b in again for e in b["event_id"]]
    assert not set(consumed) & set(rest)
    assert sorted(consumed + rest) == sorted(e for b in _reader(snap) for e in b["event_id"])


def test_key_columns_of_every_type_come_back_as_the_same_values(lake, tmp_path):
    _, snap = lake
    keys = ["event_id", "request_id", "position", "event_time", "sample_date"]
    plain = _reader(snap, keys=keys, shuffle=False)
    cached = _reader(snap, keys=keys, shuffle=False, cache_dir=tmp_path)
    cached.build_cache()
    _assert_same(list(cached), list(plain))
    assert cached.last_source == "cache"


def test_the_key_follows_the_options_that_change_the_converted_form(lake, tmp_path):
    _, snap = lake
    base = _reader(snap, cache_dir=tmp_path).cache_name
    # Order, batching and sharding are cut from the same per-unit arrays: one entry.
    same = _reader(
        snap,
        cache_dir=tmp_path,
        batch_size=7,
        seed=9,
        shuffle=False,
        shuffle_buffer=50,
        drop_last=True,
        rank=1,
        world_size=2,
    )
    assert same.cache_name == base
    others = [
        {"features": ["user_plays_24h", "item_age_hours"]},
        {"categorical": ["user_country"]},
        {"seq_len": 5},
        {"dtype": torch.float64},
        {"null_mask": True},
        {"label": "liked"},
        {"keys": []},
        {"filter": pc.field("user_plays_24h") >= 3},
    ]
    names = [_reader(snap, cache_dir=tmp_path, **o).cache_name for o in others]
    assert base not in names and len(set(names)) == len(names)


def test_a_filtered_reader_caches_only_its_rows(lake, tmp_path):
    _, snap = lake
    where = pc.field("event_time") < syn.hours_after_start(30)
    plain = _reader(snap, filter=where, seed=4)
    cached = _reader(snap, filter=where, seed=4, cache_dir=tmp_path)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        _assert_same(list(cached), list(plain))
    entry = ReaderCache(tmp_path, 10**9).entries()[0]
    assert entry.rows == sum(len(b["event_id"]) for b in plain) < ROWS
    # A later reader takes its units from the entry (no Parquet footer read) and agrees.
    assert sorted(_reader(snap, filter=where, cache_dir=tmp_path).units) == sorted(cached.units)


def test_a_rolled_back_alias_never_reads_the_other_snapshots_cache(settings, tmp_path):
    first = _publish(settings)
    second = _publish(settings, rows=700, offset=ROWS)
    newest = _reader("training_samples@latest", settings=settings, cache_dir=tmp_path)
    assert newest.snapshot_id == second.id
    list(newest)
    assert newest.is_cached()
    rollback(settings, "training_samples")
    latest = _reader("training_samples@latest", settings=settings, cache_dir=tmp_path)
    assert latest.snapshot_id == first.id and latest.cache_name != newest.cache_name
    assert not latest.is_cached()
    _assert_same(list(latest), list(_reader(first.id, settings=settings)))
    assert latest.last_source == "build"


_WORKER = textwrap.dedent(
    """
    import hashlib, json, os, signal, sys, time
    from reclake.config import Settings
    from reclake.reader import SnapshotDataset
    from reclake.reader import cache as rc

    lake, folder, snapshot_id, go, mode = sys.argv[1:6]
    if mode.startswith("kill-"):
        # Die like a killed process (no cleanup, no finally) in the middle of the build.
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "kill-add":
            original = rc.Writer.add
            def add(self, *args, **kwargs):
                original(self, *args, **kwargs)
                while (self.folder / "dense.bin").stat().st_size == 0:  # written: now die
                    time.sleep(0.001)
                die()
            rc.Writer.add = add
        else:  # kill-publish: the manifest is written, the folder not yet renamed
            original = rc._write_json
            def write(*args, **kwargs):
                original(*args, **kwargs)
                die()
            rc._write_json = write
    shard = {}
    if mode == "ranks":  # one rank of three each: the first to lock builds the whole entry
        shard = {"rank": int(os.environ["TEST_RANK"]), "world_size": 3}
    dataset = SnapshotDataset(
        snapshot_id, settings=Settings(lake_root=lake), batch_size=64, shuffle_buffer=500,
        seed=3, cache_dir=folder, **shard,
    )
    open(go + "." + str(os.getpid()), "w").close()
    while not os.path.exists(go):
        time.sleep(0.002)
    built = dataset.build_cache() if mode == "build_cache" else None
    digest = hashlib.sha256()
    for batch in dataset:
        for key in ("dense", "label", "user_id", "item_id", "sequence", "sequence_len"):
            digest.update(batch[key].numpy().tobytes())
    print(json.dumps({"source": dataset.last_source, "built": built, "digest": digest.hexdigest()}))
    """
)


def _digest(dataset: SnapshotDataset) -> str:
    import hashlib

    digest = hashlib.sha256()
    for batch in dataset:
        for key in ("dense", "label", "user_id", "item_id", "sequence", "sequence_len"):
            digest.update(batch[key].numpy().tobytes())
    return digest.hexdigest()


def _processes(settings, snap, folder: Path, count: int, mode: str) -> list[dict]:
    """Run `count` reader processes that start their epoch at the same moment."""
    go = folder.parent / f"go-{mode}"
    argv = [sys.executable, "-c", _WORKER, settings.lake_root, str(folder), snap.id, str(go), mode]
    procs = [
        subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TEST_RANK": str(rank)},
        )
        for rank in range(count)
    ]
    deadline = time.monotonic() + 120
    while len(list(folder.parent.glob(f"{go.name}.*"))) < count:  # every reader constructed
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append({"returncode": proc.returncode, "stderr": err, "out": out})
    return results


@pytest.mark.parametrize("mode", ["epoch", "ranks", "build_cache"])
def test_concurrent_processes_build_once_and_read_the_same_batches(lake, tmp_path, mode):
    settings, snap = lake
    folder = tmp_path / "cache"
    runs = _processes(settings, snap, folder, 3, mode)
    assert [r["returncode"] for r in runs] == [0] * 3, [r["stderr"] for r in runs]
    reports = [json.loads(r["out"].splitlines()[-1]) for r in runs]
    if mode == "ranks":
        want = [_digest(_reader(snap, seed=3, keys=[], rank=r, world_size=3)) for r in range(3)]
        assert [r["digest"] for r in reports] == want
    else:
        assert {r["digest"] for r in reports} == {_digest(_reader(snap, seed=3, keys=[]))}
    sources = sorted(r["source"] for r in reports)
    if mode == "epoch":
        # Exactly one built, writing as its epoch read Parquet; the others read Parquet
        # meanwhile (its build lasts as long as its training loop), or the finished entry.
        assert sources.count("build") == 1 and set(sources) <= {"build", "cache", "parquet"}
    elif mode == "ranks":
        # One rank built the whole entry in one go; the others waited for it and read it.
        assert sources == ["build", "cache", "cache"]
    else:
        # build_cache() waits for a running builder instead: one built, all read the entry.
        assert sorted(r["built"] for r in reports) == [False, False, True]
        assert {r["source"] for r in reports} == {"cache"}
    assert len(ReaderCache(folder, 10**9).entries()) == 1
    assert not list(folder.glob(f"{BUILD_PREFIX}*"))


@pytest.mark.parametrize("kill", ["kill-add", "kill-publish"])
def test_a_killed_build_is_never_trusted_and_the_next_one_succeeds(lake, tmp_path, kill):
    settings, snap = lake
    folder = tmp_path / "cache"
    [run] = _processes(settings, snap, folder, 1, kill)
    assert run["returncode"] == -9  # SIGKILL: no finally, no cleanup
    [leftover] = list(folder.glob(f"{BUILD_PREFIX}*"))
    assert (leftover / "dense.bin").stat().st_size > 0  # half-written data is there
    cache = ReaderCache(folder, 10**9)
    assert cache.entries() == []
    reader = _reader(snap, seed=3, keys=[], cache_dir=folder)  # the killed reader's options
    assert not reader.is_cached()
    _assert_same(list(reader), list(_reader(snap, seed=3, keys=[])))
    assert reader.last_source == "build"
    assert [e.name for e in cache.entries()] == [reader.cache_name]
    assert not list(folder.glob(f"{BUILD_PREFIX}*"))  # the dead build was cleaned up


def test_least_recently_used_entries_make_room(lake, tmp_path):
    _, snap = lake
    # Three entries of the same size: one hashed string column each.
    readers = [
        _reader(snap, keys=[], categorical=[c], cache_dir=tmp_path)
        for c in ("user_country", "user_device", "item_category")
    ]
    first, second, third = readers
    first.build_cache()
    second.build_cache()
    cache = ReaderCache(tmp_path, 10**9)
    size = cache.entries()[0].bytes
    os.utime(Path(second.cache_path) / "last_access", (1_000_000_000,) * 2)  # used long ago
    third = _reader(
        snap, keys=[], categorical=["item_category"], cache_dir=tmp_path, cache_max_bytes=2 * size
    )
    third.build_cache()
    assert {e.name for e in cache.entries()} == {first.cache_name, third.cache_name}
    assert not second.is_cached() and first.is_cached()


def test_an_entry_over_the_size_limit_reads_parquet(lake, tmp_path, caplog):
    _, snap = lake
    small = _reader(snap, cache_dir=tmp_path, cache_max_bytes=10_000)
    with caplog.at_level(logging.WARNING):
        _assert_same(list(small), list(_reader(snap)))
    assert small.last_source == "parquet" and "over the" in caplog.text
    assert ReaderCache(tmp_path, 10**9).entries() == []


def test_cli_builds_lists_and_clears(lake, tmp_path, monkeypatch, capsys):
    settings, snap = lake
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    folder = str(tmp_path / "cache")
    assert cli(["cache", "list", "--dir", folder]) == 0
    assert "0 entries" in capsys.readouterr().out

    assert cli(["cache", "build", "training_samples@latest", "--dir", folder, "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["built"] and built["rows"] == ROWS and built["snapshot_id"] == snap.id
    # The entry the CLI built is the one a reader with the same options reads.
    reader = SnapshotDataset(snap, cache_dir=folder)
    assert reader.cache_name == built["entry"] and reader.is_cached()
    assert cli(["cache", "build", snap.id, "--dir", folder]) == 0
    assert capsys.readouterr().out.startswith("already cached")
    assert cli(["cache", "build", snap.id, "--dir", folder, "--seq-len", "5"]) == 0
    capsys.readouterr()

    assert cli(["cache", "list", "--dir", folder, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["entries"]) == 2 and {e["rows"] for e in listed["entries"]} == {ROWS}
    assert cli(["cache", "list", "--dir", folder]) == 0
    text = capsys.readouterr().out
    assert "2 entries" in text and "user_last_played[5]" in text

    assert cli(["cache", "clear", built["entry"], "--dir", folder]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert cli(["cache", "clear", "training_samples@latest", "--dir", folder, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["removed"]) == 1
    assert ReaderCache(folder, 10**9).entries() == []

    # User errors: one line on stderr, exit 1; usage errors exit 2.
    assert cli(["cache", "build", "training_samples@nope", "--dir", folder]) == 1
    assert capsys.readouterr().err.startswith("error: unknown snapshot")
    assert cli(["cache", "build", snap.id, "--dir", folder, "--features", "nope"]) == 1
    assert "not in the snapshot" in capsys.readouterr().err
    assert cli(["cache", "list", "--dir", "s3://bucket/cache"]) == 1
    assert (
        capsys.readouterr().err
        == "error: the reader cache must be a local folder, not s3://bucket/cache\n"
    )
    with pytest.raises(SystemExit) as usage:
        cli(["cache"])
    assert usage.value.code == 2


def test_the_cache_is_on_when_configured_and_off_when_asked(lake, tmp_path):
    settings, snap = lake
    configured = Settings(
        lake_root=settings.lake_root, reader_cache=True, reader_cache_dir=tmp_path
    )
    on = SnapshotDataset(snap.id, settings=configured)
    assert on.cache is not None and on.cache.root == tmp_path
    assert SnapshotDataset(snap.id, settings=configured, cache=False).cache is None
    default = SnapshotDataset(snap.id, settings=settings)  # on by default, configured folder
    assert default.cache is not None and default.cache.root == settings.reader_cache_dir
    off = replace(settings, reader_cache=False)
    assert SnapshotDataset(snap.id, settings=off).cache is None
    assert SnapshotDataset(snap.id, settings=off, cache=True).cache is not None
    assert SnapshotDataset(snap.id, settings=off, cache_dir=tmp_path).cache is not None
