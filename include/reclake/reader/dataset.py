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

With a cache (cache=True, see reader/cache.py) each unit's converted rows are kept on local
disk after the first epoch; later epochs take a window's rows from the memory maps instead of
decoding and converting Parquet, through the same windows, permutations and batch cutting, so
the batches are the same.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import IterableDataset

from reclake.config import Settings, load_settings
from reclake.reader import batches, manifest
from reclake.reader import cache as reader_cache
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
# Batches gathered at once in the main process when reading from the cache (see __iter__).
_MAIN_BUNDLE = 32

log = logging.getLogger(__name__)


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
        cache: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_max_bytes: int | None = None,
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
        self.cache = _cache(settings, cache, cache_dir, cache_max_bytes)
        self.cache_name: str | None = None
        # Where the last epoch iterated in this process came from: "cache", "build" (this
        # process built the cache entry during or before it) or "parquet".
        self.last_source: str | None = None
        units = None
        if self.cache is not None:
            self._cache_key = reader_cache.key(self.snapshot, self.spec, filter)
            self.cache_name = reader_cache.entry_name(self._cache_key)
            entry = self._open_cache(units=())
            # A cached snapshot's units come from the entry: no Parquet footer is read (on an
            # object store, one request per file saved).
            units = None if entry is None else tuple(sorted(entry.units))
        self.units: tuple[WorkUnit, ...] = units or manifest.list_units(
            self.snapshot, self.schema, filter
        )
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

    @property
    def cache_path(self) -> str | None:
        """Folder of this reader's cache entry (which may not exist yet), or None without a
        cache."""
        return None if self.cache is None else str(self.cache.root / str(self.cache_name))

    def is_cached(self) -> bool:
        """True when the cache holds this reader's converted snapshot (epochs read from it)."""
        return self.cache is not None and self._open_cache() is not None

    def build_cache(self) -> bool:
        """Build this reader's cache entry now unless it exists, waiting for a process already
        building it (for loops that never finish an epoch). True if this call built it."""
        if self.cache is None:
            raise reader_cache.CacheError("this reader has no cache (cache=False)")
        if self._open_cache() is not None:
            return False
        writer = self._cache_writer(wait=True)
        if writer is None:  # the process we waited for built it
            if self._open_cache() is None:
                raise reader_cache.CacheError(f"cache entry {self.cache_name} is not readable")
            return False
        if self._build(writer) is None:
            raise reader_cache.CacheError(f"cache entry {self.cache_name} could not be built")
        return True

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
        source = self._source(stream, skip * self.batch_size, threads)
        cut = self._batches(stream, skip * self.batch_size, source)
        cached = isinstance(source, _Cached)
        # In the main process, from the cache, the copy into the batch is all that is left:
        # gather a bundle of batches at once, split between the cores, and hand out views of
        # it (one buffer and one threaded copy per bundle instead of per batch).
        bundle = self._bundle if not in_main else _MAIN_BUNDLE if cached else 1
        gather_threads = threads if cached else 1
        for group in _chunks(cut, bundle):
            # In a worker the batch goes to shared memory, packed (see batches.SharedBatch);
            # under SnapshotLoader several batches share one buffer (fewer, larger transfers).
            batch = batches.gather(
                [p for pieces in group for p in pieces], shared=not in_main, threads=gather_threads
            )
            batch["worker"] = stream.worker
            if bundle > 1:
                batch[batches.BUNDLE] = [sum(batches.count(i) for _, i in g) for g in group]
            if not in_main:
                yield batch
                continue
            for one in batches.split(batch) if bundle > 1 else [batch]:
                self._yielded[0] += 1
                yield one

    def _batches(
        self, stream: Stream, skip_rows: int, source: _Parquet | _Cached
    ) -> Iterator[list[batches.Piece]]:
        """Each batch as the window rows it takes, from Parquet or from the cache."""
        units = self.stream_units(stream)
        groups = windows(units, self.shuffle_buffer) if self.shuffle else [[u] for u in units]
        try:
            first = 0
            while first < len(groups) and skip_rows:
                rows = source.count(groups[first])
                if skip_rows < rows:
                    break
                skip_rows -= rows
                first += 1
            pieces: list[batches.Piece] = []
            have, size = 0, self.batch_size
            for index, (arrays, positions) in enumerate(source.windows(groups[first:]), first):
                n = batches.num_rows(arrays) if positions is None else batches.count(positions)
                rows_of = _selector(positions, self._window_order(stream, index, n))
                start, skip_rows = skip_rows, 0
                while start < n:
                    take = min(size - have, n - start)
                    pieces.append((arrays, rows_of(start, start + take)))
                    have, start = have + take, start + take
                    if have == size:
                        yield pieces
                        pieces, have = [], 0
            if pieces and not self.drop_last:
                yield pieces
        finally:
            source.close()

    def _source(self, stream: Stream, skip_rows: int, threads: int) -> _Parquet | _Cached:
        """Where this stream's epoch comes from: the cache when it is complete; else Parquet,
        building the cache on the way when this stream reads every unit (else before it)."""
        source, self.last_source = self._pick_source(stream, skip_rows, threads)
        return source

    def _pick_source(
        self, stream: Stream, skip_rows: int, threads: int
    ) -> tuple[_Parquet | _Cached, str]:
        if self.cache is None:
            return _Parquet(self, threads), "parquet"
        entry = self._open_cache()
        if entry is not None:
            return _Cached(entry), "cache"
        # A stream that reads every unit converts them all anyway: it writes them as they
        # pass. One stream of several (or a resumed one) reads only some units: it builds the
        # whole entry first, with every core, then reads its share from it.
        every_unit = stream.world_size == stream.num_workers == 1 and not skip_rows
        mode = reader_cache.EPOCH if every_unit else reader_cache.WHOLE
        try:
            writer = self._cache_writer(wait=False, mode=mode)
        except reader_cache.CacheError as exc:
            log.warning("%s; reading Parquet", exc)
            return _Parquet(self, threads), "parquet"
        if writer is None:
            # Another process builds it. Building it whole, it keeps the cores busy and is
            # soon done: wait, then read the entry (reading Parquet beside it would only slow
            # it down). Writing it through a training epoch, it may take as long as the
            # training: read Parquet meanwhile.
            self.cache.wait_for_whole_build(self.cache_name)
            entry = self._open_cache()
            if entry is None:
                return _Parquet(self, threads), "parquet"
            return _Cached(entry), "cache"
        if every_unit:
            return _Parquet(self, threads, writer), "build"
        entry = self._build(writer)
        if entry is None:
            return _Parquet(self, threads), "parquet"
        return _Cached(entry), "build"

    def _open_cache(self, units: Sequence[WorkUnit] | None = None) -> reader_cache.Entry | None:
        """The complete cache entry, if it holds every unit (this reader's by default)."""
        assert self.cache is not None and self.cache_name is not None
        entry = self.cache.open(self.cache_name, self._cache_key, self.snapshot.files)
        if entry is None or not entry.covers(self.units if units is None else units):
            return None
        return entry

    def _cache_writer(
        self, wait: bool, mode: str = reader_cache.WHOLE
    ) -> reader_cache.Writer | None:
        assert self.cache is not None and self.cache_name is not None
        return self.cache.writer(
            self.cache_name,
            self._cache_key,
            self.snapshot,
            self.spec,
            self.schema,
            estimate_rows=sum(u.num_rows for u in self.units),
            wait=wait,
            mode=mode,
        )

    def _build(self, writer: reader_cache.Writer) -> reader_cache.Entry | None:
        """Convert every unit into the cache entry (with all the process's cores) and open it."""
        threads = _cores_per_stream(1)
        in_worker = torch.utils.data.get_worker_info() is not None
        decode = pa.cpu_count()
        if in_worker:
            pa.set_cpu_count(threads)  # the worker's share was set for reading, not building
        source = _Parquet(self, threads, writer)
        try:
            for _ in source.windows(windows(sorted(self.units), self.shuffle_buffer)):
                pass
        finally:
            source.close()
            if in_worker:
                pa.set_cpu_count(decode)
        return self._open_cache()

    def _read(self, group: Sequence[WorkUnit]) -> list[pa.Table]:
        return manifest.read_units(group, self.schema, self.spec.columns, self.filter)

    def _window_order(self, stream: Stream, index: int, n: int) -> np.ndarray | None:
        if not self.shuffle:
            return None  # manifest order: batches are copied from slices
        return epoch_rng(self.seed, self.epoch, stream.rank, stream.worker, index).permutation(n)


class _Parquet:
    """Windows decoded from Parquet and converted, one ahead in a thread; with a cache writer,
    each converted window is also appended to the cache entry being built."""

    def __init__(
        self, dataset: SnapshotDataset, threads: int, writer: reader_cache.Writer | None = None
    ) -> None:
        self.dataset = dataset
        self.threads = threads
        self.writer = writer
        self.loaded: Generator[batches.Arrays, None, None] | None = None

    def count(self, group: Sequence[WorkUnit]) -> int:
        """Rows of the group matching the filter (footer counts without one)."""
        return manifest.count_rows(group, self.dataset.schema, self.dataset.filter)

    def windows(self, groups: Sequence[Sequence[WorkUnit]]) -> Iterator[tuple[Any, None]]:
        """Each group's converted arrays, all rows in unit order (positions None)."""
        # One thread decodes and converts the next window while batches are cut from this one
        # (measured: a separate decode thread costs more than it overlaps on 2 cores). The
        # conversion splits the window's rows over `threads` threads: alone it left a core
        # idle (1.35 of 2 cores busy; 1.7 with two threads, about 18 % more rows/s).
        self.loaded = prefetch(self._convert(groups))
        for arrays in self.loaded:
            yield arrays, None

    def _convert(self, groups: Sequence[Sequence[WorkUnit]]) -> Iterator[batches.Arrays]:
        spec = self.dataset.spec
        for group in groups:
            tables = self.dataset._read(group)
            counts = [t.num_rows for t in tables]
            # Building the cache, the window is converted straight into the entry's files.
            into = None if self.writer is None else self.writer.reserve(sum(counts))
            arrays = batches.to_arrays(tables, spec, self.threads, into)
            if self.writer is not None:
                self.writer.add(group, counts, arrays)
            yield arrays
        if self.writer is not None:
            self.writer.finish(self.dataset.units)

    def close(self) -> None:
        """Stop the read-ahead; a build that did not see every unit is abandoned."""
        if self.loaded is not None:
            self.loaded.close()
        if self.writer is not None:
            self.writer.abort()


class _Cached:
    """Windows as positions in the cache entry's memory-mapped arrays (no copy until the
    batch gather)."""

    def __init__(self, entry: reader_cache.Entry) -> None:
        self.entry = entry

    def count(self, group: Sequence[WorkUnit]) -> int:
        """Rows of the group in the cache (filtered when it was built)."""
        return self.entry.rows(group)

    def windows(self, groups: Sequence[Sequence[WorkUnit]]) -> Iterator[tuple[Any, Any]]:
        """Each group as (the entry's arrays, the group's rows in them)."""
        for group in groups:
            yield self.entry.arrays, self.entry.positions(group)

    def close(self) -> None:
        """Nothing to stop: the maps close with the last batch viewing them."""


def _selector(positions: slice | np.ndarray | None, order: np.ndarray | None) -> Any:
    """rows(a, b): the arrays' rows holding window rows a..b of the (permuted) window."""
    if positions is None:  # the arrays are the window
        if order is None:
            return lambda a, b: slice(a, b)
        return lambda a, b: order[a:b]
    if isinstance(positions, slice):
        base = positions.start
        if order is None:
            return lambda a, b: slice(base + a, base + b)
        moved = order + base
        return lambda a, b: moved[a:b]
    taken = positions if order is None else positions[order]
    return lambda a, b: taken[a:b]


def _cache(
    settings: Settings | None,
    cache: bool | None,
    folder: str | os.PathLike[str] | None,
    max_bytes: int | None,
) -> reader_cache.ReaderCache | None:
    """The reader's cache: on unless turned off (cache=False, or RECLAKE_READER_CACHE=false
    without cache=True or a cache_dir)."""
    if cache is False:
        return None
    config = settings or load_settings()
    if cache is None and folder is None and not config.reader_cache:
        return None
    return reader_cache.ReaderCache(
        folder if folder is not None else config.reader_cache_dir,
        config.reader_cache_max_bytes if max_bytes is None else max_bytes,
    )


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
