"""Arrow tables -> numpy window arrays -> packed torch batches, whole columns at a time (no
per-row Python).

Two copies per row, on purpose:
1. window: each column is copied once out of Arrow into row-major arrays this module owns
   (the copy also casts to float32, fills nulls, pads sequences, hashes strings);
2. batch: a batch's rows are gathered (np.take) from the window straight into one freshly
   allocated buffer, and every tensor of the batch is a view of that buffer.

So batches are writable and contiguous, never alias Arrow's read-only buffers nor each other
(no torch "not writable" warning, in-place ops are safe). In a DataLoader worker the buffer is
in shared memory and the batch pickles as that one buffer plus a layout: one shared-memory
handle per batch instead of one per tensor, and no copy when it is sent. Each worker reuses
its shared buffers once the main process has let go of them (_BufferPool).
"""

from __future__ import annotations

import hashlib
import math
import os
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclake.features.definitions import SAMPLE_KEYS, SAMPLE_LABELS

# Rows per block when filling the row-major feature matrix: the block stays in cache while
# every column is written into it (writing whole strided columns is about 2x slower).
_BLOCK_ROWS = 4096
# Start of each tensor in a packed batch buffer (cache-line aligned, any dtype fits).
_ALIGN = 64
# Shared-memory buffers a DataLoader worker keeps for reuse: DataLoader's prefetch (2 per
# worker), one or two held by the training loop, one being filled, and room to spare.
_POOL_SIZE = 8
# Rows from which a gather is worth splitting between threads (a bundle of batches; a single
# 1024-row batch copies in tens of microseconds, less than handing it to threads costs).
_PARALLEL_ROWS = 8192
# Ids of hashed strings are non-negative int64; 0 is reserved for null.
_HASH_MASK = (1 << 63) - 1

# Key of a bundle (several batches in one buffer): the row count of each of its batches.
BUNDLE = "bundle"

Arrays = dict[str, np.ndarray]
# Rows of one window that go into a batch: an index array, or a slice (with start and stop).
Piece = tuple[Arrays, np.ndarray | slice]


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
    # String columns -> "categorical" int64 [B, C]: a stable hash of each value (null -> 0).
    categorical: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """The projection: only these columns are read from Parquet."""
        cols = [*self.features, self.label, *self.id_columns, *self.keys, *self.categorical]
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
        for name in self.categorical:
            if not _is_string(schema.field(name).type):
                raise ValueError(f"categorical column {name!r} must be a string column")
        if self.sequence:
            kind = schema.field(self.sequence).type
            if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not (
                pa.types.is_integer(kind.value_type)
            ):
                raise ValueError(f"sequence column {self.sequence!r} must be a list of integers")


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _is_string(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def default_features(schema: pa.Schema, exclude: Sequence[str] = ()) -> tuple[str, ...]:
    """Integer and float columns except keys and labels (watch_ms would leak the label)."""
    skip = {n for n, _ in (*SAMPLE_KEYS, *SAMPLE_LABELS)} | set(exclude)
    return tuple(
        f.name
        for f in schema
        if f.name not in skip and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
    )


def string_id(value: str) -> int:
    """Stable id of a string (the same in every process and run): 63 bits of BLAKE2b, never 0."""
    digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") & _HASH_MASK) or 1


def array_layout(spec: BatchSpec) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """The converted arrays of a spec, in batch key order: name -> (dtype, shape of a row)."""
    layout = {
        "dense": (spec.numpy_dtype, (len(spec.features),)),
        "label": (spec.numpy_dtype, ()),
    }
    if spec.null_mask:
        layout["dense_null"] = (np.dtype(bool), (len(spec.features),))
    for name in spec.id_columns:
        layout[name] = (np.dtype(np.int64), ())
    if spec.categorical:
        layout["categorical"] = (np.dtype(np.int64), (len(spec.categorical),))
    if spec.sequence:
        layout["sequence"] = (np.dtype(np.int64), (spec.seq_len,))
        layout["sequence_len"] = (np.dtype(np.int64), ())
    for name in spec.keys:
        layout[name] = (np.dtype(object), ())
    return layout


def to_arrays(
    tables: Sequence[pa.Table], spec: BatchSpec, threads: int = 1, into: Arrays | None = None
) -> Arrays:
    """Convert the rows of several tables into one set of numpy arrays (row order kept), in up
    to `threads` threads, each filling its own range of rows. Arrays given in `into` (of the
    right shape; zeroed where a null mask is kept) are filled in place; the rest are new."""
    n = sum(t.num_rows for t in tables)
    out: Arrays = {}
    for name, (dtype, width) in array_layout(spec).items():
        if into is not None and name in into:
            out[name] = into[name]
        elif name == "dense_null":
            out[name] = np.zeros((n, *width), dtype=dtype)
        else:
            out[name] = np.empty((n, *width), dtype=dtype)
    parts, start = [], 0
    for table in tables:
        for batch in table.to_batches():
            parts += _row_ranges(batch, start, threads)
            start += batch.num_rows
    if threads > 1 and len(parts) > 1:
        # numpy and pyarrow release the GIL while they copy, so the threads run in parallel.
        list(_executor(threads).map(lambda part: _fill(out, *part, spec), parts))
    else:
        for part in parts:
            _fill(out, *part, spec)
    return out


def _row_ranges(batch: pa.RecordBatch, start: int, parts: int) -> list[tuple]:
    """(rows, first output row) pieces of a batch: about `parts` of them, none tiny."""
    n = batch.num_rows
    step = max(_BLOCK_ROWS, -(-n // parts))
    return [(batch.slice(a, step), start + a) for a in range(0, n, step)] or [(batch, start)]


_executors: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _executor(threads: int) -> ThreadPoolExecutor:
    # Keyed by process too: a forked DataLoader worker inherits the dict but not the threads.
    key = (os.getpid(), threads)
    if key not in _executors:
        _executors[key] = ThreadPoolExecutor(threads, thread_name_prefix="reclake-convert")
    return _executors[key]


def _fill(out: Arrays, batch: pa.RecordBatch, start: int, spec: BatchSpec) -> None:
    stop = start + batch.num_rows
    dense = []
    for j, name in enumerate(spec.features):
        column = batch.column(name)
        if column.null_count:
            if spec.null_mask:
                out["dense_null"][start:stop, j] = column.is_null().to_numpy(zero_copy_only=False)
            column = pc.fill_null(column, pa.scalar(0).cast(column.type))  # bool: False
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
    for j, name in enumerate(spec.categorical):
        out["categorical"][start:stop, j] = _hash_strings(batch.column(name))
    if spec.sequence:
        _fill_sequence(
            batch.column(spec.sequence),
            out["sequence"][start:stop],
            out["sequence_len"][start:stop],
        )


def _numpy(column: pa.Array) -> np.ndarray:
    # Zero-copy view for null-free numeric buffers; booleans are bit-packed and get unpacked.
    return column.to_numpy(zero_copy_only=False)


def _hash_strings(column: pa.Array) -> np.ndarray:
    """string_id of every value (null -> 0): Python runs once per distinct value, not per row."""
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    lookup = np.array([string_id(v) for v in encoded.dictionary.to_pylist()] + [0], np.int64)
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary))
    return lookup[_numpy(indices)]


def _fill_sequence(column: pa.Array, padded: np.ndarray, lengths: np.ndarray) -> None:
    """Left-aligned first `seq_len` elements of each list (most recent first), zero padded."""
    seq_len = padded.shape[1]
    starts = column.offsets.to_numpy()[:-1]  # absolute positions into column.values
    # One trailing 0 that every padding slot points at: a single gather, no boolean masks.
    values = np.append(_numpy(pc.fill_null(column.values, 0)), 0).astype(np.int64, copy=False)
    # Null lists count as empty whatever their offsets say.
    full = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    np.minimum(full, seq_len, out=lengths)
    steps = np.arange(seq_len)
    # Row blocks keep the index temporaries small and in cache (no fresh pages to fault in).
    for a in range(0, len(lengths), _BLOCK_ROWS):
        b = a + _BLOCK_ROWS
        where = np.where(steps < lengths[a:b, None], starts[a:b, None] + steps, len(values) - 1)
        # mode="clip" writes straight into `padded` ("raise" buffers); indices are valid.
        np.take(values, where, out=padded[a:b], mode="clip")


def num_rows(arrays: Arrays) -> int:
    """Rows held by a set of arrays."""
    return len(arrays["label"])


def gather(pieces: Sequence[Piece], shared: bool = False, threads: int = 1) -> dict[str, Any]:
    """One batch: the rows `pieces` select, in order, as torch tensors packed in one buffer.

    With `shared`, the buffer is in shared memory and the batch is a SharedBatch (for
    DataLoader workers). Object columns (keys) stay numpy arrays. With `threads` > 1 a large
    gather (a bundle of batches) is split by rows between that many threads.
    """
    first = pieces[0][0]
    pieces = _merged(pieces)
    counts = [count(index) for _, index in pieces]
    rows = sum(counts)
    layout = [
        (key, a.dtype, a.shape[1:], a.itemsize * math.prod(a.shape[1:]))
        for key, a in first.items()
        if a.dtype != object
    ]
    nbytes = sum(_aligned(rows * row_bytes) for *_, row_bytes in layout)
    buffer = _pool().take(nbytes) if shared else torch.empty(nbytes, dtype=torch.uint8)
    views = _carve(buffer.numpy(), layout, rows)
    copies = []  # (source array, its rows, output rows, first output row)
    for key, out in views.items():
        at = 0
        for (arrays, index), size in zip(pieces, counts, strict=True):
            copies.append((arrays[key], index, out[at : at + size], at))
            at += size
    if threads > 1 and rows >= _PARALLEL_ROWS:
        # Each thread copies one range of the batch's rows of every column; numpy releases
        # the GIL while it copies, so the ranges copy in parallel.
        step = -(-rows // threads)
        ranges = [(a, min(a + step, rows)) for a in range(0, rows, step)]
        list(_executor(threads).map(lambda r: _copy_range(copies, *r), ranges))
    else:
        for source, index, out, _ in copies:
            _copy_rows(source, index, out)
    batch: dict[str, Any] = {}
    for key in first:
        if key in views:
            batch[key] = torch.from_numpy(views[key])
        else:
            batch[key] = np.concatenate([a[key][index] for a, index in pieces])
    return SharedBatch(batch, buffer, layout, rows) if shared else batch


def _copy_rows(source: Any, index: np.ndarray | slice, out: np.ndarray) -> None:
    if isinstance(index, slice):
        out[...] = source[index]
    else:
        # mode="clip" writes straight into `out` ("raise" buffers); indices are valid.
        np.take(source, index, axis=0, out=out, mode="clip")


def _copy_range(copies: list, a: int, b: int) -> None:
    """Copy the batch's rows a..b of every column."""
    for source, index, out, at in copies:
        lo, hi = max(a - at, 0), min(b - at, len(out))
        if lo < hi:
            if isinstance(index, slice):
                index = slice(index.start + lo, index.start + hi)
            else:
                index = index[lo:hi]
            _copy_rows(source, index, out[lo:hi])


def _merged(pieces: Sequence[Piece]) -> list[Piece]:
    """Adjacent runs of one window joined: the batches of a bundle are consecutive runs of the
    window's order, so a bundle costs one copy per window and tensor, not one per batch."""
    out: list[Piece] = []
    for arrays, index in pieces:
        joined = _joined(out[-1][1], index) if out and out[-1][0] is arrays else None
        if joined is None:
            out.append((arrays, index))
        else:
            out[-1] = (arrays, joined)
    return out


def _joined(a: np.ndarray | slice, b: np.ndarray | slice) -> np.ndarray | slice | None:
    """a followed by b as one run, when b starts where a ends (slices, or views of one array)."""
    if isinstance(a, slice) and isinstance(b, slice):
        return slice(a.start, b.stop) if a.stop == b.start else None
    if isinstance(a, slice) or isinstance(b, slice):
        return None
    base = a.base
    if base is None or b.base is not base or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        return None
    if b.ctypes.data != a.ctypes.data + a.nbytes:
        return None
    at = (a.ctypes.data - base.ctypes.data) // base.itemsize
    return base[at : at + len(a) + len(b)]


def count(index: np.ndarray | slice) -> int:
    """Rows a piece selects."""
    return index.stop - index.start if isinstance(index, slice) else len(index)


def split(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The batches of a bundle, as row ranges (views) of its tensors and arrays."""
    sizes = list(bundle[BUNDLE])
    # One split call per column rather than one slice per column and batch (a bundle in
    # the main process reading the cache is all small batches: this was a tenth of its CPU).
    columns: dict[str, Any] = {}
    for key, value in bundle.items():
        if key == BUNDLE:
            continue
        if isinstance(value, torch.Tensor):
            columns[key] = value.split(sizes)
        elif isinstance(value, np.ndarray):
            columns[key] = np.split(value, np.cumsum(sizes)[:-1])
        else:
            columns[key] = [value] * len(sizes)  # a scalar (the worker id)
    return [{key: parts[i] for key, parts in columns.items()} for i in range(len(sizes))]


def _aligned(nbytes: int) -> int:
    return -(-nbytes // _ALIGN) * _ALIGN


def _carve(memory: np.ndarray, layout: Sequence[tuple], rows: int) -> dict[str, np.ndarray]:
    """Typed, shaped views of consecutive aligned slices of one byte buffer."""
    views, offset = {}, 0
    for key, dtype, row_shape, row_bytes in layout:
        size = rows * row_bytes
        views[key] = memory[offset : offset + size].view(dtype).reshape(rows, *row_shape)
        offset += _aligned(size)
    return views


class SharedBatch(dict):
    """A batch whose tensors are views of one shared-memory buffer. It pickles (from a
    DataLoader worker to the main process) as that buffer plus the layout, and unpickles as a
    plain dict of views: one shared-memory handle per batch instead of one per tensor."""

    def __init__(self, items: dict[str, Any], buffer: torch.Tensor, layout: list, rows: int):
        super().__init__(items)
        self._packed = (buffer, layout, rows)
        self._views = {key: items[key] for key, *_ in layout}

    def __copy__(self) -> SharedBatch:
        # DataLoader's default_convert copies the mapping; keep the packed form.
        copy = SharedBatch(dict(self), *self._packed)
        copy._views = self._views
        return copy

    def __reduce__(self) -> tuple:
        if any(self.get(key) is not view for key, view in self._views.items()):
            return dict, (dict(self),)  # a tensor was replaced: pickle tensors one by one
        rest = {k: v for k, v in self.items() if k not in self._views}
        return _unpack, (*self._packed, rest, list(self))


def _unpack(buffer: torch.Tensor, layout: list, rows: int, rest: dict, order: list) -> dict:
    held = _Held(buffer)
    # Tell the worker it may refill the buffer once the last view of it is gone.
    weakref.finalize(held, _release, buffer.untyped_storage())
    views = _carve(np.asarray(held), layout, rows)
    return {k: torch.from_numpy(views[k]) if k in views else rest[k] for k in order}


class _Held:
    """Root of the numpy views of a received buffer: every view (and every tensor made from
    one) keeps it alive, so it dies with the last of them. Tensor.numpy() would root the
    views at an object that can die before them."""

    def __init__(self, buffer: torch.Tensor) -> None:
        self.buffer = buffer
        self.__array_interface__ = {
            "data": (buffer.data_ptr(), False),
            "shape": (buffer.numel(),),
            "typestr": "|u1",
            "version": 3,
        }


def _release(storage: torch.UntypedStorage) -> None:
    storage[0] = 0


class _BufferPool:
    """Shared-memory buffers of one worker, reused once the main process let go of them.

    A fresh shared buffer costs more than filling it (the kernel zeroes and maps every page,
    in the worker and again in the main process, then frees them), so each worker keeps a few.
    Byte 0 of a buffer is 1 while the main process may hold it: set when it is handed out,
    cleared by the main process when the last tensor viewing it is freed (_release). A buffer
    never released (a batch kept forever) is just not reused.
    """

    def __init__(self, size: int = _POOL_SIZE) -> None:
        self.size = size
        # (whole buffer: a header then the payload, numpy view of the whole buffer)
        self.buffers: list[tuple[torch.Tensor, np.ndarray]] = []

    def take(self, nbytes: int) -> torch.Tensor:
        """A shared uint8 tensor of nbytes, marked held until the main process releases it."""
        free = [i for i, (_, memory) in enumerate(self.buffers) if not memory[0]]
        fits = [i for i in free if len(self.buffers[i][1]) >= _ALIGN + nbytes]
        if fits:
            whole, memory = self.buffers[fits[0]]
        else:
            storage = torch.UntypedStorage._new_shared(_ALIGN + nbytes)
            whole = torch.empty(0, dtype=torch.uint8).set_(storage)
            memory = whole.numpy()
            if free:  # too small for this size: replace it
                self.buffers[free[0]] = (whole, memory)
            elif len(self.buffers) < self.size:
                self.buffers.append((whole, memory))
        memory[0] = 1
        return whole[_ALIGN : _ALIGN + nbytes]


_pools: dict[int, _BufferPool] = {}


def _pool() -> _BufferPool:
    # Keyed by process: a forked worker must never refill its parent's buffers.
    return _pools.setdefault(os.getpid(), _BufferPool())
