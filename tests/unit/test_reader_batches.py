"""Arrow -> numpy conversion of the reader on tiny inline tables: nulls, casts, sequences."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclake.reader.batches import BatchSpec, concat, take, to_arrays, to_tensors

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


def test_tensors_are_writable_and_owned():
    arrays = to_arrays([_table()], SPEC)
    tensors = to_tensors(take(arrays, np.array([2, 0])))
    assert tensors["dense"].dtype == torch.float32 and tensors["user_id"].dtype == torch.int64
    assert tensors["user_id"].tolist() == [12, 10]
    tensors["dense"] += 1  # in-place on a batch must not touch the window
    assert arrays["dense"][0, 0] == 1.0
    both = concat(take(arrays, slice(0, 1)), take(arrays, slice(2, 3)))
    assert both["user_id"].tolist() == [10, 12]


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
