"""SnapshotDataset: a torch IterableDataset that reads a published snapshot exactly once per
epoch, in a deterministic order, as ready-made dict batches (use DataLoader(batch_size=None)).

How an epoch is read:
1. units = every (file, row group) of the snapshot that may match the filter, sorted;
2. shuffled by (seed, epoch), dealt round-robin to ranks, then to the rank's DataLoader workers;
3. each stream reads its units in windows of at least `shuffle_buffer` rows, permutes each
   window with a Generator seeded by (seed, epoch, rank, worker, window) and cuts batches
   from the concatenated windows (only the stream's last batch can be short).

A background thread reads and converts the next window while batches are cut from the
current one; a batch is gathered from the window arrays straight into one packed buffer.

Resume: a stream's position is the number of batches it has yielded; since all its batches but
the last are full, that is `batches * batch_size` rows, and resuming skips whole windows by
their (filtered) row counts and re-reads only the window it stopped in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import IterableDataset

from reclake.config import Settings
from reclake.reader import batches, manifest
from reclake.reader.prefetch import prefetch
from reclake.reader.sharding import (
    Stream,
    WorkUnit,
    current_stream,
    epoch_rng,
    epoch_units,
    shard,
    windows,
)

DEFAULT_SHUFFLE_BUFFER = 131_072


class SnapshotDataset(IterableDataset):
    """Batches of a published snapshot for PyTorch: exactly once per epoch, seeded, resumable."""

    def __init__(
        self,
        ref_or_snapshot: Any,
        *,
        settings: Settings | None = None,
        features: Sequence[str] | None = None,
        label: str = "played",
        id_columns: Sequence[str] = ("user_id", "item_id"),
        sequence: str | None = "user_last_played",
        seq_len: int = 20,
        filter: Any = None,
        batch_size: int = 1024,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        dtype: torch.dtype = torch.float32,
        drop_last: bool = False,
        null_mask: bool = False,
        keys: Sequence[str] = (),
        categorical: Sequence[str] = (),
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or seq_len < 1 or shuffle_buffer < 1:
            raise ValueError("batch_size, seq_len and shuffle_buffer must be positive")
        self.snapshot = manifest.load_snapshot(ref_or_snapshot, settings)
        self.schema = manifest.arrow_schema(self.snapshot)
        if features is None:
            features = batches.default_features(self.schema, exclude=(sequence or "",))
        self.spec = batches.BatchSpec(
            features=tuple(features),
            label=label,
            id_columns=tuple(id_columns),
            sequence=sequence,
            seq_len=seq_len,
            null_mask=null_mask,
            dtype=dtype,
            keys=tuple(keys),
            categorical=tuple(categorical),
        )
        self.spec.validate(self.schema)
        self.filter = filter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.units: tuple[WorkUnit, ...] = manifest.list_units(self.snapshot, self.schema, filter)
        self.epoch = 0
        # Batches yielded per stream worker in this epoch (main-process iteration or recorded
        # by SnapshotLoader), and the positions a loaded checkpoint resumes from.
        self._yielded: dict[int, int] = {}
        self._num_workers = 1
        self._resume: dict[str, Any] | None = None
        # Batches per worker transfer; SnapshotLoader raises it while it starts its workers.
        self._bundle = 1

    @property
    def snapshot_id(self) -> str:
        """Id of the snapshot being read."""
        return str(self.snapshot.id)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column of each position of the "dense" tensor."""
        return self.spec.features

    @property
    def categorical_names(self) -> tuple[str, ...]:
        """Column of each position of the "categorical" tensor."""
        return self.spec.categorical

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its unit order and shuffle); call before iterating each epoch."""
        if epoch != self.epoch:
            self._yielded = {}
            if self._resume is not None and self._resume["epoch"] != epoch:
                self._resume = None
        self.epoch = epoch

    # ---- checkpointing -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Position in the epoch at a batch boundary: batches yielded by each worker stream."""
        stream = current_stream(self.rank, self.world_size)
        counts = [self._yielded.get(w, 0) for w in range(self._num_workers)]
        return {
            "snapshot_id": self.snapshot_id,
            "seed": self.seed,
            "epoch": self.epoch,
            "batch_size": self.batch_size,
            "rank": stream.rank,
            "world_size": stream.world_size,
            "num_workers": self._num_workers,
            "batches": counts,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from state_dict(): the next iteration yields exactly the remaining rows."""
        mine = {"snapshot_id": self.snapshot_id, "seed": self.seed, "batch_size": self.batch_size}
        for key, value in mine.items():
            if state[key] != value:
                raise ValueError(f"checkpoint {key}={state[key]!r} but this reader has {value!r}")
        self.epoch = state["epoch"]
        self._num_workers = state["num_workers"]
        self._yielded = dict(enumerate(state["batches"]))
        self._resume = dict(state)

    def record(self, worker: int, num_workers: int) -> None:
        """Count a batch consumed from a worker (SnapshotLoader calls this in the main process)."""
        self._num_workers = num_workers
        self._yielded[worker] = self._yielded.get(worker, 0) + 1

    def _skip_batches(self, stream: Stream) -> int:
        if self._resume is None or self._resume["epoch"] != self.epoch:
            return 0
        got = (self._resume["world_size"], self._resume["rank"], self._resume["num_workers"])
        want = (stream.world_size, stream.rank, stream.num_workers)
        if got != want:
            raise ValueError(
                f"checkpoint taken with (world_size, rank, workers) = {got}, resuming with {want}"
            )
        return int(self._resume["batches"][stream.worker])

    # ---- iteration ---------------------------------------------------------------------------

    def stream_units(self, stream: Stream) -> list[WorkUnit]:
        """The units one stream reads in the current epoch, in reading order."""
        return shard(epoch_units(self.units, self.seed, self.epoch, self.shuffle), stream)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stream = current_stream(self.rank, self.world_size)
        skip = self._skip_batches(stream)
        in_main = torch.utils.data.get_worker_info() is None
        if in_main:
            self._num_workers = 1
            self._yielded = {0: skip}
        threads = _cores_per_stream(stream.num_workers)
        if not in_main:
            # pyarrow would otherwise start a decode pool of os.cpu_count() threads in every
            # worker: N workers would run N times as many decode threads as there are cores
            # (measured with 2 workers on 2 cores: about 0.3 CPU-s per million rows lost).
            # The worker process is the reader's own, so the process-wide setting is safe.
            pa.set_cpu_count(threads)
        cut = self._batches(stream, skip * self.batch_size, threads)
        bundle = 1 if in_main else self._bundle
        for group in _chunks(cut, bundle):
            # In a worker the batch goes to shared memory, packed (see batches.SharedBatch);
            # under SnapshotLoader several batches share one buffer (fewer, larger transfers).
            batch = batches.gather([p for pieces in group for p in pieces], shared=not in_main)
            batch["worker"] = stream.worker
            if bundle > 1:
                batch[batches.BUNDLE] = [sum(batches.count(i) for _, i in g) for g in group]
            if in_main:
                self._yielded[0] += 1
            yield batch

    def _batches(
        self, stream: Stream, skip_rows: int, threads: int = 1
    ) -> Iterator[list[batches.Piece]]:
        """Each batch as the window rows it takes; windows are read one ahead in a thread."""
        units = self.stream_units(stream)
        groups = windows(units, self.shuffle_buffer) if self.shuffle else [[u] for u in units]
        first = 0
        while first < len(groups) and skip_rows:
            rows = manifest.count_rows(groups[first], self.schema, self.filter)
            if skip_rows < rows:
                break
            skip_rows -= rows
            first += 1
        # One thread decodes and converts the next window while batches are cut from this one
        # (measured: a separate decode thread costs more than it overlaps on 2 cores). The
        # conversion splits the window's rows over `threads` threads: alone it left a core
        # idle (1.35 of 2 cores busy; 1.7 with two threads, about 18 % more rows/s).
        loaded = prefetch(
            batches.to_arrays(self._read(g), self.spec, threads) for g in groups[first:]
        )
        pieces: list[batches.Piece] = []
        have, size = 0, self.batch_size
        try:
            for index, arrays in enumerate(loaded, start=first):
                n = batches.num_rows(arrays)
                order = self._window_order(stream, index, n)
                start, skip_rows = skip_rows, 0
                while start < n:
                    take = min(size - have, n - start)
                    rows = (
                        slice(start, start + take) if order is None else order[start : start + take]
                    )
                    pieces.append((arrays, rows))
                    have, start = have + take, start + take
                    if have == size:
                        yield pieces
                        pieces, have = [], 0
            if pieces and not self.drop_last:
                yield pieces
        finally:
            loaded.close()

    def _read(self, group: Sequence[WorkUnit]) -> list[pa.Table]:
        return manifest.read_units(group, self.schema, self.spec.columns, self.filter)

    def _window_order(self, stream: Stream, index: int, n: int) -> np.ndarray | None:
        if not self.shuffle:
            return None  # manifest order: batches are copied from slices
        return epoch_rng(self.seed, self.epoch, stream.rank, stream.worker, index).permutation(n)


def _cores_per_stream(num_workers: int) -> int:
    """Cores one reading process may keep busy: its share when DataLoader workers split them."""
    # The CPUs this process may run on (taskset, cpusets), not every core of the host.
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (usable or 1) // num_workers)


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
