"""SnapshotDataset over real published snapshots (Delta written by deltalake, published through
the registry): exactly-once sharding, determinism, resume, filters, batch format, stability."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
import torch
from torch.utils.data import DataLoader

from reclake.config import Settings
from reclake.reader import SnapshotDataset, SnapshotLoader
from reclake.reader import synthetic as syn
from reclake.reader.batches import string_id
from reclake.snapshots import SnapshotExpired, SnapshotNotFound, expire, resolve

pytestmark = pytest.mark.integration

ROWS = 2500  # 3 daily partitions x 5 row groups of <= 200 rows: 15 units, not a multiple of 4


def _publish(settings: Settings, rows: int = ROWS, offset: int = 0):
    return syn.publish_samples(settings, rows, offset=offset)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """One published snapshot shared by the read-only tests."""
    settings = Settings(lake_root=(tmp_path_factory.mktemp("reader") / "lake").as_uri())
    return settings, _publish(settings)


def _table(settings: Settings, version: int, filter=None):
    """The snapshot's rows read independently of the reader: delta-rs at that version."""
    dataset = deltalake.DeltaTable(syn.table_uri(settings), version=version).to_pyarrow_dataset()
    return dataset.to_table(filter=filter)


def _reader(snapshot, **kwargs) -> SnapshotDataset:
    options = {"batch_size": 64, "shuffle_buffer": 500, "keys": ["event_id"], **kwargs}
    if "cache_dir" not in options:
        options.setdefault("cache", False)  # the Parquet path unless a test asks for the cache
    return SnapshotDataset(snapshot, **options)


def _ids(batches) -> list[str]:
    return [e for b in batches for e in b["event_id"]]


def test_every_row_exactly_once_across_ranks_and_workers(lake):
    settings, snap = lake
    seen: list[str] = []
    per_stream = Counter()
    for rank in range(2):
        dataset = _reader(snap, rank=rank, world_size=2, seed=3)
        for batch in DataLoader(dataset, batch_size=None, num_workers=2):
            seen += list(batch["event_id"])
            per_stream[(rank, batch["worker"])] += len(batch["event_id"])
    expected = _table(settings, snap.version).column("event_id").to_pylist()
    assert len(seen) == len(expected) == ROWS
    assert Counter(seen) == Counter(expected)  # same multiset: no loss, no duplicate
    assert sorted(per_stream) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # all four streams read


class _DecodeThreads(SnapshotDataset):
    """Tags each batch with the size of pyarrow's decode pool in the process that cut it."""

    def __iter__(self):
        for batch in super().__iter__():
            batch["decode_threads"] = pa.cpu_count()
            yield batch


def test_workers_split_the_decode_threads(lake):
    _, snap = lake
    options = {"batch_size": 64, "shuffle_buffer": 500}
    seen = {
        b["decode_threads"]
        for b in DataLoader(_DecodeThreads(snap, **options), batch_size=None, num_workers=2)
    }
    assert seen == {max(1, len(os.sched_getaffinity(0)) // 2)}
    # The main process keeps its own pool untouched.
    assert {b["decode_threads"] for b in _DecodeThreads(snap, **options)} == {pa.cpu_count()}


def test_same_seed_and_epoch_same_order_other_epoch_other_order(lake):
    _, snap = lake
    first, again, other = _reader(snap, seed=7), _reader(snap, seed=7), _reader(snap, seed=7)
    other.set_epoch(1)
    order = _ids(first)
    assert order == _ids(again)
    assert order != _ids(other)
    assert sorted(order) == sorted(_ids(other))
    # Rows from different row groups are mixed within a batch (the shuffle buffer works).
    head = _ids([next(iter(first))])
    assert head != sorted(head, key=lambda e: int(e[1:]))


def test_no_shuffle_reads_in_manifest_order(lake):
    _, snap = lake
    order = _ids(_reader(snap, shuffle=False))
    # The synthetic event ids grow with event time, so manifest order is id order here.
    assert order == sorted(order, key=lambda e: int(e[1:]))


@pytest.mark.parametrize(
    "consumed, options",
    [
        (0, {}),
        (3, {}),  # inside the first shuffle window
        (17, {}),  # past several windows
        (39, {}),  # the last (short) batch is all that remains
        (5, {"filter": pc.field("user_plays_24h") >= 3}),  # skips by filtered counts
        (4, {"drop_last": True, "batch_size": 100}),
    ],
)
def test_resume_yields_exactly_the_remaining_rows(lake, consumed, options):
    _, snap = lake
    full = [list(b["event_id"]) for b in _reader(snap, seed=1, **options)]
    dataset = _reader(snap, seed=1, **options)
    batches = iter(dataset)
    head = [list(next(batches)["event_id"]) for _ in range(consumed)]
    state = dataset.state_dict()  # checkpoint after training on `consumed` batches
    assert state["batches"] == [consumed]
    resumed = _reader(snap, seed=1, **options)
    resumed.load_state_dict(state)
    rest = [list(b["event_id"]) for b in resumed]
    assert head + rest == full


def test_resume_with_two_workers(lake):
    _, snap = lake
    loader = SnapshotLoader(_reader(snap, seed=2), num_workers=2)
    consumed = []
    for batch in loader:
        consumed += list(batch["event_id"])
        if len(consumed) >= 640:
            break
    state = loader.state_dict()
    assert sum(state["batches"]) == 10
    again = SnapshotLoader(_reader(snap, seed=2), num_workers=2)
    again.load_state_dict(state)
    rest = [e for b in again for e in b["event_id"]]
    assert not set(consumed) & set(rest)
    assert len(consumed) + len(rest) == ROWS
    with pytest.raises(ValueError, match="worker streams"):
        SnapshotLoader(_reader(snap, seed=2), num_workers=1).load_state_dict(state)


def test_loader_bundles_give_each_worker_the_same_batches_as_a_dataloader(lake):
    _, snap = lake

    def per_worker(batches) -> dict[int, list[list[str]]]:
        out: dict[int, list[list[str]]] = {}
        for batch in batches:
            assert batch["dense"].shape[0] == len(batch["event_id"]) == batch["label"].shape[0]
            out.setdefault(batch["worker"], []).append(list(batch["event_id"]))
        return out

    plain = DataLoader(_reader(snap, seed=4), batch_size=None, num_workers=2)
    bundled = SnapshotLoader(_reader(snap, seed=4), num_workers=2, bundle=3)
    assert per_worker(bundled) == per_worker(plain)


def test_filter_is_pushed_down_and_exact(lake):
    settings, snap = lake
    start, end = syn.hours_after_start(30), syn.hours_after_start(40)
    where = (pc.field("event_time") >= start) & (pc.field("event_time") < end)
    dataset = _reader(snap, filter=where)
    expected = _table(settings, snap.version, where).column("event_id").to_pylist()
    assert 0 < len(expected) < ROWS
    assert sorted(_ids(dataset)) == sorted(expected)
    # Pruned by partition values and row-group statistics: only units that can match are read.
    assert len(dataset.units) < len(_reader(snap).units)
    only_day = _reader(snap, filter=pc.field("sample_date") == start.date())
    assert {u.file.partition_values["sample_date"] for u in only_day.units} == {"2024-01-02"}


def test_batch_format_matches_the_table(lake):
    settings, snap = lake
    dataset = _reader(snap, shuffle=False, null_mask=True, batch_size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable array" warning
        batch = next(iter(dataset))
    rows = {r["event_id"]: r for r in _table(settings, snap.version).to_pylist()}
    features = dataset.feature_names
    assert "played" not in features and "watch_ms" not in features and "user_id" not in features
    assert "user_play_rate_1h" in features and "user_last_played_len" in features
    assert batch["dense"].dtype == torch.float32 and batch["dense"].shape == (300, len(features))
    assert batch["label"].dtype == torch.float32 and batch["label"].shape == (300,)
    assert batch["user_id"].dtype == torch.int64 and batch["sequence"].shape == (300, 20)
    assert batch["dense"].numpy().flags.writeable
    nulls = 0
    for i, event_id in enumerate(batch["event_id"]):
        row = rows[event_id]
        values = [row[f] for f in features]
        nulls += sum(v is None for v in values)
        assert batch["dense_null"][i].tolist() == [v is None for v in values]
        want = np.array([0.0 if v is None else v for v in values], dtype=np.float32)
        np.testing.assert_array_equal(batch["dense"][i].numpy(), want)
        assert batch["label"][i].item() == float(row["played"])
        assert batch["item_id"][i].item() == row["item_id"]
        seq = row["user_last_played"][:20]
        assert batch["sequence_len"][i].item() == len(seq)
        assert batch["sequence"][i].tolist() == seq + [0] * (20 - len(seq))
    assert nulls > 0  # the null path was exercised


def test_string_columns_are_hashed_into_ids(lake):
    settings, snap = lake
    names = ["user_country", "item_category"]
    dataset = _reader(snap, shuffle=False, categorical=names, batch_size=500)
    assert dataset.categorical_names == tuple(names)
    rows = {r["event_id"]: r for r in _table(settings, snap.version).to_pylist()}
    batch = next(iter(dataset))
    assert batch["categorical"].dtype == torch.int64 and batch["categorical"].shape == (500, 2)
    for i, event_id in enumerate(batch["event_id"]):
        want = [string_id(rows[event_id][n]) for n in names]
        assert batch["categorical"][i].tolist() == want


def test_options_shape_the_batch(lake):
    _, snap = lake
    dataset = SnapshotDataset(
        snap,
        features=["user_plays_24h", "item_age_hours"],
        label="liked",
        id_columns=["item_id"],
        sequence="user_last_played",
        seq_len=5,
        dtype=torch.float64,
        batch_size=1000,
        drop_last=True,
    )
    sizes = [len(b["label"]) for b in dataset]
    assert sizes == [1000, 1000]  # 2500 rows, the short last batch dropped
    batch = next(iter(dataset))
    assert batch["dense"].dtype == torch.float64 and batch["dense"].shape == (1000, 2)
    assert batch["sequence"].shape == (1000, 5) and int(batch["sequence_len"].max()) == 5
    assert "user_id" not in batch
    with pytest.raises(ValueError, match="not in the snapshot"):
        SnapshotDataset(snap, features=["no_such_column"])
    with pytest.raises(ValueError, match="not numeric"):
        SnapshotDataset(snap, features=["user_country"])


def test_snapshot_is_stable_after_newer_writes_and_compaction(settings):
    first = _publish(settings)
    before = sorted(_ids(_reader(first)))
    uri = syn.table_uri(settings)
    syn.write_samples(uri, syn.sample_batch(500, offset=ROWS, hours=72), row_group_rows=200)
    metrics = deltalake.DeltaTable(uri).optimize.compact()
    assert metrics["numFilesRemoved"] > 0  # compaction really rewrote files
    compacted = syn.publish_version(settings, deltalake.DeltaTable(uri).version())
    assert not {f.path for f in first.files} & {f.path for f in compacted.files}
    assert sorted(_ids(_reader(first.id, settings=settings))) == before
    after = sorted(_ids(_reader(compacted.id, settings=settings)))
    assert len(after) == ROWS + 500 and set(before) < set(after)


def test_unknown_or_expired_snapshot_fails_clearly(settings):
    first = _publish(settings)
    _publish(settings, rows=100, offset=ROWS)
    with pytest.raises(SnapshotNotFound, match="unknown snapshot"):
        SnapshotDataset("training_samples@no-such-id", settings=settings)
    with pytest.raises(SnapshotNotFound, match="no snapshot has been published"):
        SnapshotDataset("events@latest", settings=settings)
    assert [s.id for s in expire(settings, "training_samples", keep_last=1)] == [first.id]
    with pytest.raises(SnapshotExpired, match=first.id):
        SnapshotDataset(first.id, settings=settings)
    expired = resolve(settings, first.id, allow_expired=True)
    with pytest.raises(SnapshotExpired):
        SnapshotDataset(expired)  # an expired Snapshot object is refused too


def test_latest_ref_and_read_arrow_dataset_agree(lake):
    settings, snap = lake
    ids = sorted(_ids(_reader("training_samples@latest", settings=settings)))
    direct = ds.dataset(_table(settings, snap.version)).to_table(columns=["event_id"])
    assert ids == sorted(direct.column("event_id").to_pylist())
