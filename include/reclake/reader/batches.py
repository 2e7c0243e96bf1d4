"""Arrow tables -> numpy arrays -> torch tensors, whole columns at a time (no per-row Python).

Copy vs zero-copy, on purpose: every column is copied exactly once out of Arrow into arrays
this module owns (the copy also casts to float32, fills nulls, pads sequences), so batches are
writable, contiguous and never alias Arrow's read-only buffers (no torch "not writable"
warning, no undefined behaviour when a training step modifies a batch in place). After that,
torch.from_numpy is zero-copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclake.features.definitions import SAMPLE_KEYS, SAMPLE_LABELS

# Row block for filling the row-major feature matrix: keeps the block in cache while every
# column is written into it (about 2x faster than writing whole strided columns).
_BLOCK_ROWS = 2048

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchSpec:
    """What a batch holds: which columns feed which tensor, and how."""

    features: tuple[str, ...]  # dense numeric columns -> "dense" [B, F]
    label: str  # -> "label" [B]
    id_columns: tuple[str, ...]  # each -> int64 [B] under its own name
    sequence: str | None  # list<int64> column -> "sequence" [B, seq_len] + "sequence_len" [B]
    seq_len: int = 20
    null_mask: bool = False  # also emit "dense_null" bool [B, F]: True where the value was null
    dtype: torch.dtype = torch.float32
    # Row keys passed through as numpy arrays of Python values (e.g. event_id) for auditing
    # and joins; object arrays are slow, so none by default.
    keys: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The projection: only these columns are read from Parquet."""
        cols = [*self.features, self.label, *self.id_columns, *self.keys]
        if self.sequence:
            cols.append(self.sequence)
        return list(dict.fromkeys(cols))

    @property
    def numpy_dtype(self) -> np.dtype:
        """numpy dtype of the dense features and the label."""
        return torch.empty(0, dtype=self.dtype).numpy().dtype

    def validate(self, schema: pa.Schema) -> None:
        """Fail clearly when a column is missing or has a type the batch cannot hold."""
        missing = [c for c in self.columns if c not in schema.names]
        if missing:
            raise ValueError(f"columns not in the snapshot: {missing}; it has {schema.names}")
        for name in (*self.features, self.label):
            if not _is_numeric(schema.field(name).type):
                raise ValueError(f"column {name!r} is {schema.field(name).type}, not numeric")
        for name in self.id_columns:
            if not pa.types.is_integer(schema.field(name).type):
                raise ValueError(f"id column {name!r} must be an integer column")
        if self.sequence:
            kind = schema.field(self.sequence).type
            if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not (
                pa.types.is_integer(kind.value_type)
            ):
                raise ValueError(f"sequence column {self.sequence!r} must be a list of integers")


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def default_features(schema: pa.Schema, exclude: Sequence[str] = ()) -> tuple[str, ...]:
    """Integer and float columns except keys and labels (watch_ms would leak the label)."""
    skip = {n for n, _ in (*SAMPLE_KEYS, *SAMPLE_LABELS)} | set(exclude)
    return tuple(
        f.name
        for f in schema
        if f.name not in skip and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
    )


def to_arrays(tables: Sequence[pa.Table], spec: BatchSpec) -> Arrays:
    """Convert the rows of several tables into one set of owned numpy arrays (row order kept)."""
    n = sum(t.num_rows for t in tables)
    out: Arrays = {
        "dense": np.empty((n, len(spec.features)), dtype=spec.numpy_dtype),
        "label": np.empty(n, dtype=spec.numpy_dtype),
    }
    if spec.null_mask:
        out["dense_null"] = np.zeros((n, len(spec.features)), dtype=bool)
    for name in spec.id_columns:
        out[name] = np.empty(n, dtype=np.int64)
    for name in spec.keys:
        out[name] = np.empty(n, dtype=object)
    if spec.sequence:
        out["sequence"] = np.zeros((n, spec.seq_len), dtype=np.int64)
        out["sequence_len"] = np.empty(n, dtype=np.int64)
    start = 0
    for table in tables:
        for batch in table.to_batches():
            stop = start + batch.num_rows
            _fill(out, batch, spec, start, stop)
            start = stop
    return out


def _fill(out: Arrays, batch: pa.RecordBatch, spec: BatchSpec, start: int, stop: int) -> None:
    dense = []
    for j, name in enumerate(spec.features):
        column = batch.column(name)
        if column.null_count:
            if spec.null_mask:
                out["dense_null"][start:stop, j] = column.is_null().to_numpy(zero_copy_only=False)
            column = pc.fill_null(column, 0)
        dense.append(_numpy(column))
    for a in range(0, stop - start, _BLOCK_ROWS):
        block = out["dense"][start + a : min(start + a + _BLOCK_ROWS, stop)]
        for j, values in enumerate(dense):
            block[:, j] = values[a : a + _BLOCK_ROWS]
    label = batch.column(spec.label)
    if label.null_count:
        # A missing label is a data bug the validation gate should have caught: never guess.
        raise ValueError(f"label column {spec.label!r} has {label.null_count} null(s)")
    out["label"][start:stop] = _numpy(label)
    for name in (*spec.id_columns, *spec.keys):
        out[name][start:stop] = _numpy(batch.column(name))
    if spec.sequence:
        _fill_sequence(
            batch.column(spec.sequence),
            out["sequence"][start:stop],
            out["sequence_len"][start:stop],
        )


def _numpy(column: pa.Array) -> np.ndarray:
    # Zero-copy view for null-free numeric buffers; booleans are bit-packed and get unpacked.
    return column.to_numpy(zero_copy_only=False)


def _fill_sequence(column: pa.Array, padded: np.ndarray, lengths: np.ndarray) -> None:
    """Left-aligned first `seq_len` elements of each list (most recent first), zero padded."""
    seq_len = padded.shape[1]
    offsets = column.offsets.to_numpy()  # absolute positions into column.values
    values = _numpy(pc.fill_null(column.values, 0))
    # Null lists count as empty whatever their offsets say.
    full = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    lengths[:] = np.minimum(full, seq_len)
    take = np.arange(seq_len)[None, :] < lengths[:, None]
    padded[take] = values[(offsets[:-1, None] + np.arange(seq_len)[None, :])[take]]


def take(arrays: Arrays, index: np.ndarray | slice) -> Arrays:
    """Rows of every array (a fancy index copies; a slice is a view)."""
    return {k: v[index] for k, v in arrays.items()}


def concat(first: Arrays, second: Arrays) -> Arrays:
    """Rows of `first` followed by rows of `second`."""
    return {k: np.concatenate([first[k], second[k]]) for k in first}


def num_rows(arrays: Arrays) -> int:
    """Rows held by a set of arrays."""
    return len(arrays["label"])


def to_tensors(arrays: Arrays) -> dict[str, torch.Tensor | np.ndarray]:
    """Zero-copy torch views of owned numpy arrays; key columns stay numpy object arrays."""
    return {k: v if v.dtype == object else torch.from_numpy(v) for k, v in arrays.items()}
