"""Arrow -> numpy conversion of the reader on tiny inline tables: nulls, casts, sequences,
hashed strings; batches gathered into one packed buffer, bundles, and their pickling."""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclake.reader.batches import (
    BUNDLE,
    BatchSpec,
    SharedBatch,
    gather,
    split,
    string_id,
    to_arrays,
)

SPEC = BatchSpec(
    features=("count", "ratio"),
    label="played",
    id_columns=("user_id",),
    sequence="seq",
    seq_len=3,
    null_mask=True,
)


def _table(offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "count": pa.array([1, 2, None], pa.int64()),
            "ratio": pa.array([0.5, None, 0.25]),
            "played": pa.array([True, False, True]),
            "user_id": pa.array([10 + offset, 11 + offset, 12 + offset], pa.int64()),
            # longer than seq_len (truncated), empty, null list (empty)
            "seq": pa.array([[7, 8, 9, 10], [], None], pa.list_(pa.int64())),
        }
    )


def test_threads_fill_the_same_arrays_as_one():
    # Big enough (several _BLOCK_ROWS per batch) for the rows to be split between threads,
    # with chunked tables and a sliced one so the row offsets of each piece matter.
    rng = np.random.default_rng(5)
    tables = []
    for size in (9000, 20000, 7001):
        ids = rng.integers(0, 1000, size)
        tables.append(
            pa.table(
                {
                    "count": pa.array(ids, mask=ids % 7 == 0),
                    "ratio": pa.array(rng.random(size), mask=ids % 5 == 0),
                    "played": pa.array(ids % 2 == 0),
                    "user_id": pa.array(np.arange(size, dtype=np.int64)),
                    "seq": pa.array([list(range(i % 5)) for i in ids], pa.list_(pa.int64())),
                }
            )
        )
    tables[1] = pa.concat_tables([tables[1].slice(0, 11000), tables[1].slice(11000)])
    tables[2] = tables[2].slice(1)
    one, four = to_arrays(tables, SPEC, threads=1), to_arrays(tables, SPEC, threads=4)
    assert len(one["label"]) == 9000 + 20000 + 7000
    for key in one:
        np.testing.assert_array_equal(four[key], one[key], err_msg=key)
    # Spot check against the source: the last table's last row.
    assert one["user_id"][-1] == 7000
    assert one["sequence_len"][-1] == ids[-1] % 5


def test_arrays_from_several_tables_and_chunks():
    sliced = _table(100).slice(1)  # a sliced list column: offsets do not start at 0
    arrays = to_arrays([_table(), sliced], SPEC)
    np.testing.assert_array_equal(
        arrays["dense"], np.array([[1, 0.5], [2, 0], [0, 0.25], [2, 0], [0, 0.25]], np.float32)
    )
    assert arrays["dense_null"].tolist() == [
        [False, False],
        [False, True],
        [True, False],
        [False, True],
        [True, False],
    ]
    assert arrays["label"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert arrays["user_id"].tolist() == [10, 11, 12, 111, 112]
    assert arrays["sequence"].tolist() == [[7, 8, 9], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert arrays["sequence_len"].tolist() == [3, 0, 0, 0, 0]


def test_long_sequences_span_row_blocks():
    # More rows than one conversion block, lists of every length around seq_len.
    lists = [list(range(i, i + i % 7)) for i in range(10_000)]
    table = pa.table(
        {
            "count": pa.array(range(10_000), pa.int64()),
            "ratio": pa.array([0.5] * 10_000),
            "played": pa.array([True] * 10_000),
            "user_id": pa.array(range(10_000), pa.int64()),
            "seq": pa.array(lists, pa.list_(pa.int32())),
        }
    )
    arrays = to_arrays([table], SPEC)
    want = np.array([[*x, 0, 0, 0][:3] for x in lists])
    np.testing.assert_array_equal(arrays["sequence"], want)
    np.testing.assert_array_equal(arrays["sequence_len"], [min(len(x), 3) for x in lists])


def test_every_feature_dtype_with_nulls_and_odd_slices_matches_python():
    # Per-dtype compiled loops over raw Arrow buffers: bitmaps read at bit offsets that are not
    # byte-aligned, more rows than one block, null values inside lists. Checked against pylist.
    rng = np.random.default_rng(7)
    n = 1500

    def nullable(values, kind):
        return pa.array([None if rng.random() < 0.2 else v for v in values.tolist()], kind)

    lists = [
        None if i % 11 == 0 else [None if v % 5 == 0 else v for v in range(i % 6)] for i in range(n)
    ]
    table = pa.table(
        {
            "i32": nullable(rng.integers(-9, 9, n), pa.int32()),
            "u8": pa.array(rng.integers(0, 255, n), pa.uint8()),
            "f32": nullable(rng.random(n), pa.float32()),
            "f64": nullable(rng.random(n), pa.float64()),
            "flag": nullable(rng.random(n) < 0.5, pa.bool_()),
            "played": pa.array([True] * n),
            "seq": pa.array(lists, pa.list_(pa.int64())),
        }
    )
    features = ("i32", "u8", "f32", "f64", "flag")
    spec = BatchSpec(features, "played", (), "seq", seq_len=4, null_mask=True, dtype=torch.float64)
    parts = [table.slice(3, 700), table.slice(703, 13), table.slice(716)]
    arrays = to_arrays(parts, spec)
    rows = table.slice(3).to_pylist()
    want = [[0.0 if r[f] is None else float(r[f]) for f in features] for r in rows]
    np.testing.assert_array_equal(arrays["dense"], np.array(want))
    assert arrays["dense_null"].tolist() == [[r[f] is None for f in features] for r in rows]
    seqs = [[0 if v is None else v for v in (r["seq"] or [])][:4] for r in rows]
    assert arrays["sequence_len"].tolist() == [len(x) for x in seqs]
    assert arrays["sequence"].tolist() == [x + [0] * (4 - len(x)) for x in seqs]


def test_batch_is_gathered_into_one_writable_buffer():
    arrays = to_arrays([_table()], SPEC)
    other = to_arrays([_table(100)], SPEC)
    batch = gather([(arrays, np.array([2, 0])), (other, slice(1, 3))])
    assert batch["dense"].dtype == torch.float32 and batch["user_id"].dtype == torch.int64
    assert batch["user_id"].tolist() == [12, 10, 111, 112]
    assert batch["sequence"].shape == (4, 3) and batch["dense_null"].dtype == torch.bool
    assert batch["dense"].is_contiguous() and batch["sequence"].is_contiguous()
    batch["dense"] += 1  # in-place on a batch must not touch the window
    assert arrays["dense"][0, 0] == 1.0
    assert batch["label"].tolist() == [1.0, 1.0, 0.0, 1.0]  # nor the other tensors of the batch


def test_runs_of_one_order_are_gathered_in_order_whether_adjacent_or_not():
    # A bundle joins adjacent runs of a window's order into one copy; gaps, other windows and
    # other arrays must stay separate pieces.
    arrays = to_arrays([_table(), _table(100)], SPEC)
    other = to_arrays([_table(200)], SPEC)
    order = np.array([5, 1, 4, 0, 3, 2])
    pieces = [
        (arrays, order[0:2]),
        (arrays, order[2:3]),  # adjacent: joined
        (arrays, order[4:6]),  # gap at 3: separate
        (other, np.array([2])),
        (arrays, slice(0, 1)),
        (arrays, slice(1, 3)),  # adjacent slices: joined
        (arrays, np.arange(6)[1:3]),  # a view of another array: separate
    ]
    got = gather(pieces)["user_id"].tolist()
    ids = arrays["user_id"]
    want = [*ids[[5, 1, 4, 3, 2]], 212, *ids[[0, 1, 2]], *ids[[1, 2]]]
    assert got == want


def test_a_gather_split_between_threads_equals_one_thread(monkeypatch):
    from reclake.reader import batches

    monkeypatch.setattr(batches, "_PARALLEL_ROWS", 4)  # split even this small gather
    arrays = to_arrays([_table(), _table(100), _table(200)], SPEC)
    other = to_arrays([_table(300)], SPEC)
    order = np.array([8, 1, 4, 0, 3, 2, 7, 5, 6])
    # Row ranges of 3 threads cut across pieces of every kind: index runs, slices, arrays.
    pieces = [(arrays, order[0:4]), (other, slice(0, 3)), (arrays, order[4:9]), (other, [1])]
    one, three = gather(pieces), gather(pieces, threads=3)
    assert list(one) == list(three)
    for key in one:
        assert torch.equal(one[key], three[key]), key
    assert three["user_id"].tolist()[:5] == [212, 11, 111, 10, 310]


def test_shared_batch_pickles_as_one_buffer_and_survives_default_convert():
    from torch.utils.data._utils.collate import default_convert

    keys = BatchSpec(
        features=("count",), label="played", id_columns=(), sequence=None, keys=("user_id",)
    )
    arrays = to_arrays([_table()], keys)
    batch = gather([(arrays, np.array([1, 2]))], shared=True)
    buffer = batch._packed[0]
    assert isinstance(batch, SharedBatch) and buffer.is_shared()
    assert batch["dense"].data_ptr() == buffer.data_ptr()  # a view of it, not a copy
    batch["worker"] = 1
    converted = default_convert(batch)  # what a DataLoader worker does with the item
    assert isinstance(converted, SharedBatch) and isinstance(copy.copy(batch), SharedBatch)
    back = pickle.loads(pickle.dumps(converted))
    assert type(back) is dict and list(back) == ["dense", "label", "user_id", "worker"]
    assert back["dense"].tolist() == [[2.0], [0.0]] and back["worker"] == 1
    assert back["user_id"].tolist() == [11, 12]  # object keys travel as numpy arrays
    batch["label"] = torch.zeros(2)  # a replaced tensor: pickled as a plain dict
    assert pickle.loads(pickle.dumps(batch))["label"].tolist() == [0.0, 0.0]


def test_bundle_splits_into_its_batches():
    arrays = to_arrays([_table(), _table(100)], SPEC)
    bundle = gather([(arrays, slice(0, 2)), (arrays, slice(2, 4)), (arrays, np.array([5]))])
    bundle.update({"worker": 0, BUNDLE: [2, 2, 1]})
    bundle["event"] = np.array(["a", "b", "c", "d", "e"], dtype=object)  # a key column
    parts = split(bundle)
    assert [p["user_id"].tolist() for p in parts] == [[10, 11], [12, 110], [112]]
    assert [p["event"].tolist() for p in parts] == [["a", "b"], ["c", "d"], ["e"]]
    assert all(p["worker"] == 0 and BUNDLE not in p for p in parts)
    assert parts[1]["sequence"].shape == (2, 3) and parts[1]["dense"].is_contiguous()


def test_strings_are_hashed_stably():
    spec = BatchSpec(
        features=("count",),
        label="played",
        id_columns=(),
        sequence=None,
        categorical=("country", "kind"),
    )
    table = pa.table(
        {
            "count": pa.array([1, 2, 3], pa.int64()),
            "played": pa.array([True, False, True]),
            "country": pa.array(["de", None, "de"]),
            "kind": pa.array(["music", "news", None]).dictionary_encode(),
        }
    )
    spec.validate(table.schema)
    got = to_arrays([table], spec)["categorical"]
    # Fixed values: the ids must not change between processes, runs or releases.
    assert string_id("de") == 8804398627457808120
    assert string_id("music") == 4499019936649601956
    assert got.tolist() == [
        [string_id("de"), string_id("music")],
        [0, string_id("news")],
        [string_id("de"), 0],
    ]
    with pytest.raises(ValueError, match="must be a string column"):
        BatchSpec(
            features=(), label="played", id_columns=(), sequence=None, categorical=("count",)
        ).validate(table.schema)


def test_null_label_is_an_error():
    table = _table().set_column(2, "played", pa.array([True, None, False]))
    with pytest.raises(ValueError, match="null"):
        to_arrays([table], SPEC)


def test_spec_validates_types():
    schema = _table().schema
    SPEC.validate(schema)
    with pytest.raises(ValueError, match="list of integers"):
        BatchSpec(features=("count",), label="played", id_columns=(), sequence="ratio").validate(
            schema
        )


def test_worker_buffers_are_reused_only_once_released(monkeypatch):
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  (registers torch's shared-memory pickling)

    from reclake.reader import batches

    monkeypatch.setattr(batches, "_pools", {})  # this process's pool, empty

    def send(batch):  # what a DataLoader worker -> main process transfer does
        return pickle.loads(ForkingPickler.dumps(batch))

    def address(batch):
        return batch._packed[0].untyped_storage().data_ptr()

    arrays = to_arrays([_table(), _table(100)], SPEC)
    first = gather([(arrays, slice(0, 2)), (arrays, slice(2, 4))], shared=True)
    held = address(first)
    received = send(first)
    received[BUNDLE] = [2, 2]
    part = split(received)[1]  # a view of one batch outlives the bundle
    del first, received
    second = gather([(arrays, slice(4, 6)), (arrays, slice(0, 2))], shared=True)
    assert address(second) != held  # the main process still holds the first buffer
    assert part["user_id"].tolist() == [12, 110]  # and its content is intact
    del part
    gc.collect()
    third = gather([(arrays, slice(1, 5))], shared=True)
    assert address(third) == held  # released: refilled, not reallocated
    assert send(third)["user_id"].tolist() == [11, 12, 110, 111]
