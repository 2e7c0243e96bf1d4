"""Local cache of the reader's converted form of a snapshot, read back as memory maps.

A snapshot never changes, so the arrays the reader converts it into (row-major float32
features, labels, ids, hashed categoricals, padded sequences and their lengths) never go
stale: the first epoch writes them to a local folder and later epochs slice the memory maps
instead of decoding Parquet.

Layout of a cache folder (RECLAKE_READER_CACHE_DIR):

    <name>/manifest.json     key, units, arrays, sizes; "complete" written last
    <name>/<array>.bin       one raw file per array, every unit's rows appended
    <name>/<key column>.arrow  row keys (object columns) as an Arrow IPC file
    <name>/last_access       its mtime is the entry's last use (LRU eviction)
    .locks/<name>.lock       flock held by the one process building <name>
    .build-<name>-...        a build in progress; never read, removed once its builder died

An entry is built in a `.build-` folder and renamed into place only once complete, so a
reader sees a whole entry or none; an interrupted build leaves only a `.build-` folder,
which no reader looks at. `<name>` is the snapshot id plus a digest of the key: the
snapshot's id and file manifest and every reader option that changes the converted form.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import mmap
import os
import pickle
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reclake.reader.batches import Arrays, BatchSpec, to_arrays
from reclake.reader.sharding import WorkUnit

log = logging.getLogger(__name__)

# Bump when the layout or the converted form changes: older entries then never match.
FORMAT = 1
MANIFEST = "manifest.json"
ACCESS = "last_access"
LOCKS = ".locks"
BUILD_PREFIX = ".build-"
TRASH_PREFIX = ".trash-"
# How a build goes, written in its lock file for the processes that find it locked: WHOLE
# converts every unit in one go (bounded, and it keeps every core busy: better waited for),
# EPOCH writes the units as a training epoch reads them (as slow as the training loop).
WHOLE = "whole"
EPOCH = "epoch"
# Converted windows queued for the writing thread (each one a window's arrays, kept alive).
_WRITE_AHEAD = 2
# How long a process that finds the lock taken looks for the builder's mode before it reads
# Parquet instead (the builder writes it right after taking the lock).
_MODE_SECONDS = 2.0
# Estimated bytes per row of a key column (object values), for the size check before a build.
_KEY_BYTES = 32

# Names this process holds the build lock of: a second lock on the same file from this
# process would wait for itself.
_held: set[str] = set()
_held_lock = threading.Lock()


class CacheError(RuntimeError):
    """A cache operation a user asked for cannot be done (e.g. a remote cache folder)."""


def key(snapshot: Any, spec: BatchSpec, filter: Any = None) -> dict[str, Any]:
    """What the converted form depends on: the snapshot (id and file manifest) and the
    options that change its arrays. Batch size, shuffle, seed and sharding do not: every
    order is cut from the same per-unit arrays."""
    base = snapshot.table_uri.rstrip("/") + "/"
    files = [
        # Relative to the table, so the key survives a moved lake (the files do not change).
        [f.path.removeprefix(base), f.size, f.num_records, sorted(f.partition_values.items())]
        for f in snapshot.files
    ]
    return {
        "format": FORMAT,
        "snapshot_id": str(snapshot.id),
        "table": snapshot.table,
        "version": snapshot.version,
        "files": _digest(files),
        "features": list(spec.features),
        "label": spec.label,
        "id_columns": list(spec.id_columns),
        "sequence": spec.sequence,
        "seq_len": spec.seq_len,
        "null_mask": spec.null_mask,
        "dtype": str(spec.numpy_dtype),
        "keys": list(spec.keys),
        "categorical": list(spec.categorical),
        # A filter changes which rows are cached. Arrow's serialized expression is typed
        # (x < 3 and x < 3.0 differ) and the same in every process; str() is for people.
        "filter": None if filter is None else _digest(pickle.dumps(filter, protocol=5)),
        "filter_text": None if filter is None else str(filter),
    }


def entry_name(material: dict[str, Any]) -> str:
    """Folder name of an entry: the snapshot id (readable) plus a digest of the whole key."""
    return f"{material['snapshot_id']}.{_digest(material)[:16]}"


def _digest(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def _boot_id() -> str:
    """This boot of the host: unsynced entries of an earlier boot may have lost pages."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def row_bytes(arrays: Arrays) -> int:
    """Bytes one row takes in the cache, from a (possibly empty) set of converted arrays."""
    total = 0
    for array in arrays.values():
        per_row = math.prod(array.shape[1:])
        total += _KEY_BYTES * per_row if array.dtype == object else array.itemsize * per_row
    return total


@dataclass(frozen=True)
class EntryInfo:
    """One cache entry as `reclake cache list` shows it."""

    name: str
    snapshot_id: str
    table: str
    rows: int
    bytes: int
    created_at: str
    last_access: float  # epoch seconds
    key: dict[str, Any]

    @property
    def last_access_iso(self) -> str:
        """Last use as an ISO UTC time."""
        return datetime.fromtimestamp(self.last_access, UTC).isoformat(timespec="seconds")


class _Objects:
    """A key column (event_id, ...) read from an Arrow IPC file: indexed like a numpy object
    array, converted to Python values only for the rows asked for."""

    dtype = np.dtype(object)

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.column = column
        self.shape = (len(column),)

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, rows: np.ndarray | slice) -> np.ndarray:
        if isinstance(rows, slice):
            part = self.column.slice(rows.start, rows.stop - rows.start)
        else:
            part = self.column.take(pa.array(rows, pa.int64()))
        # The same Python values as the reader's own object arrays (to_numpy, then objects).
        return part.to_numpy(zero_copy_only=False).astype(object, copy=False)


class Entry:
    """A complete, validated entry: its arrays memory-mapped, and where each unit's rows are."""

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, Any], files: Any):
        self.path = path
        self.manifest = manifest
        # Every array of the snapshot, in the order the converter returns them (the batch's
        # key order). The units' rows are ranges of these.
        self.arrays = arrays
        self.ranges: dict[tuple[str, int], tuple[int, int]] = {}
        self.units: list[WorkUnit] = []
        for index, group, footer_rows, offset, rows in manifest["units"]:
            file = files[index]
            self.ranges[(file.path, group)] = (offset, rows)
            self.units.append(WorkUnit(file.path, group, footer_rows, file))

    @property
    def name(self) -> str:
        """Folder name of the entry."""
        return self.path.name

    def covers(self, units: Sequence[WorkUnit]) -> bool:
        """True when every unit has its rows in the entry."""
        return all((u.path, u.row_group) in self.ranges for u in units)

    def rows(self, units: Sequence[WorkUnit]) -> int:
        """Rows the units hold in the cache (after the reader's filter)."""
        return sum(self.ranges[(u.path, u.row_group)][1] for u in units)

    def positions(self, units: Sequence[WorkUnit]) -> slice | np.ndarray:
        """Rows of the units in the cached arrays, in unit order: a slice when they follow
        each other in the files, else an index array."""
        spans = [self.ranges[(u.path, u.row_group)] for u in units]
        if all(a[0] + a[1] == b[0] for a, b in pairwise(spans)):
            start = spans[0][0] if spans else 0
            return slice(start, start + sum(rows for _, rows in spans))
        return np.concatenate([np.arange(o, o + r, dtype=np.int64) for o, r in spans])


class Writer:
    """Appends converted units to a `.build-` folder and publishes it as an entry.

    Holds the entry's build lock from creation to finish() or abort(). The numeric arrays'
    files are allocated whole up front (the units' footer rows, an upper bound) and mapped, and
    reserve() hands the converter views into them: converting a window writes the cache, with
    no copy and no write() call (copying converted windows into files cost 0.9 CPU-s per
    million rows of kernel time on ext4, a third of epoch 1). Key columns (objects) go to Arrow
    IPC files from a thread of their own, up to _WRITE_AHEAD windows behind add(). Allocating
    up front turns a full disk into an error here, not a SIGBUS while a mapped page is first
    written; a disk error abandons the build with a warning: the reader carries on from Parquet.
    """

    def __init__(
        self,
        cache: ReaderCache,
        name: str,
        material: dict[str, Any],
        lock: int,
        files: Sequence[Any],
        template: Arrays,
        key_types: dict[str, pa.DataType],
        capacity: int,
    ) -> None:
        self.cache = cache
        self.name = name
        self.material = material
        self._lock_fd = lock
        self._snapshot_files = files
        self._index = {f.path: i for i, f in enumerate(files)}
        self._template = template
        self._key_types = key_types
        self.folder = cache.root / f"{BUILD_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.folder.mkdir(parents=True)
        self._capacity = capacity
        self._maps: dict[str, np.ndarray] = {}  # numeric arrays: views of the mapped files
        self._ipc: dict[str, Any] = {}
        self._units: list[list[int]] = []
        self._rows = 0
        self._mutex = threading.Lock()  # add/finish run in the read-ahead thread, abort here
        self.state = "open"  # -> "done" | "aborted"
        for name_, array in template.items():
            if array.dtype == object:
                schema = pa.schema([pa.field(name_, key_types[name_])])
                sink = pa.OSFile(str(self.folder / f"{name_}.arrow"), "wb")
                self._ipc[name_] = (sink, pa.ipc.new_file(sink, schema))
            else:
                self._maps[name_] = _allocate(self.folder / f"{name_}.bin", array, capacity)
        self._queue: queue.Queue[Arrays | None] = queue.Queue(maxsize=_WRITE_AHEAD)
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._write_loop, name="reclake-cache-write")
        self._thread.daemon = True  # a killed epoch must not wait for its writes
        self._thread.start()

    def reserve(self, rows: int) -> Arrays | None:
        """Views of the entry's next `rows` rows for the converter to fill (numeric arrays
        only), or None once the build stopped."""
        with self._mutex:
            if self.state != "open" or self._rows + rows > self._capacity:
                return None
            return {k: m[self._rows : self._rows + rows] for k, m in self._maps.items()}

    def add(self, units: Sequence[WorkUnit], counts: Sequence[int], arrays: Arrays) -> None:
        """Append the converted rows of consecutive units (their counts in unit order); arrays
        filled in the views reserve() returned are in place already."""
        total = sum(counts)
        with self._mutex:
            if self.state != "open":
                return
            start = self._rows
            if start + total > self._capacity:
                self._failure = "more rows than the snapshot's footers count"
                return
            for key_, view in self._maps.items():
                if not _same_memory(arrays[key_], view[start : start + total]):
                    view[start : start + total] = arrays[key_]
            for unit, rows in zip(units, counts, strict=True):
                index = self._index[unit.path]
                self._units.append([index, unit.row_group, unit.num_rows, self._rows, rows])
                self._rows += rows
        if not self._ipc:
            return
        objects = {k: arrays[k] for k in self._ipc}
        with self._stop_lock:
            if not self._stopped:
                self._queue.put(objects)  # waits while _WRITE_AHEAD windows are unwritten

    def _write_loop(self) -> None:
        while (arrays := self._queue.get()) is not None:
            if self._failure is not None or self.state == "aborted":
                continue  # drain without writing
            try:
                for key_, array in arrays.items():
                    values = pa.array(array, type=self._key_types[key_])
                    self._ipc[key_][1].write_batch(pa.record_batch([values], names=[key_]))
            except (OSError, pa.ArrowException) as exc:
                self._failure = f"writing failed: {exc}"

    def _stop_writing(self) -> None:
        """Let the writing thread finish what is queued, then end it."""
        with self._stop_lock:
            if not self._stopped:
                self._stopped = True
                self._queue.put(None)
        self._thread.join()

    def finish(self, units: Sequence[WorkUnit]) -> Entry | None:
        """Publish the entry once every unit was added and written; returns it opened (None
        if the build was abandoned)."""
        self._stop_writing()
        with self._mutex:
            if self.state != "open":
                return None
            if self._failure is not None:
                self._abort(self._failure)
                return None
            added = {tuple(u[:2]) for u in self._units}
            if added != {(self._index[u.path], u.row_group) for u in units}:
                self._abort("not every unit was written")
                return None
            try:
                self._publish()
            except OSError as exc:
                self._abort(f"publishing failed: {exc}")
                return None
            self.state = "done"
        self._release()
        self.cache.evict(keep={self.name})
        return self.cache.open(self.name, self.material, self._snapshot_files)

    def abort(self, reason: str = "the epoch stopped before every unit was read") -> None:
        """Abandon the build (no-op after finish): its folder is removed, the lock released."""
        with self._mutex:
            if self.state != "open":
                return
            self.state = "aborted"  # the writing thread drops what is still queued
        self._stop_writing()
        with self._mutex:
            self._abort(reason, warn=False)

    def _abort(self, reason: str, warn: bool = True) -> None:
        if warn:
            log.warning("reader cache %s not built: %s", self.name, reason)
        self.state = "aborted"
        self._close_files()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def _close_files(self) -> None:
        # The maps close with the last view: a window the reader still cuts batches from may
        # hold one (a removed build's pages are freed then; its file is already unlinked).
        self._maps = {}
        for sink, writer in self._ipc.values():
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
                sink.close()

    def _publish(self) -> None:
        for key_, view in self._maps.items():
            # Down to the rows written: a filter may have kept fewer than the footers count.
            # The pages cut off were never written, so no view still held reaches them.
            row = view.itemsize * math.prod(view.shape[1:])
            os.truncate(self.folder / f"{key_}.bin", self._rows * row)
        self._close_files()
        arrays = []
        for key_, array in self._template.items():
            suffix = "arrow" if array.dtype == object else "bin"
            path = self.folder / f"{key_}.{suffix}"
            arrays.append(
                {
                    "name": key_,
                    "dtype": "object" if array.dtype == object else array.dtype.str,
                    "shape": list(array.shape[1:]),
                    "file": path.name,
                    "bytes": path.stat().st_size,
                }
            )
        manifest = {
            "format": FORMAT,
            "name": self.name,
            "key": self.material,
            "rows": self._rows,
            "units": self._units,
            "arrays": arrays,
            "bytes": sum(a["bytes"] for a in arrays),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "boot_id": _boot_id(),
            # Pages may still be in the page cache only: trusted in this boot, and in later
            # ones once sync() has flushed them (see ReaderCache.sync).
            "synced": False,
            "complete": True,  # written last: a manifest without it is never trusted
        }
        _write_json(self.folder / MANIFEST, manifest)
        (self.folder / ACCESS).touch()
        final = self.cache.root / self.name
        if final.exists():  # an untrusted leftover (an unsynced entry of an earlier boot)
            self.cache._remove_folder(final)
        os.rename(self.folder, final)  # atomic: readers see the whole entry or none

    def _release(self) -> None:
        if self._lock_fd >= 0:
            _unlock(self._lock_fd, self.name)
            self._lock_fd = -1


class ReaderCache:
    """A cache folder on local disk, shared by every process of the host that points at it."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        text = os.fspath(root)
        if "://" in text and not text.startswith("file://"):
            raise CacheError(f"the reader cache must be a local folder, not {text}")
        self.root = Path(text.removeprefix("file://")).expanduser()
        if max_bytes < 0:
            raise CacheError("the reader cache size limit must not be negative")
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Any) -> ReaderCache:
        """The cache RECLAKE_READER_CACHE_DIR / _MAX_BYTES configure."""
        return cls(settings.reader_cache_dir, settings.reader_cache_max_bytes)

    # ---- reading -----------------------------------------------------------------------------

    def open(self, name: str, material: dict[str, Any], files: Sequence[Any]) -> Entry | None:
        """The entry if it is complete and valid for this key, its arrays mapped; else None.

        `files` are the snapshot's files (the manifest refers to them by index). Opening
        records the access for LRU eviction.
        """
        folder = self.root / name
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            if not self._trusted(manifest, material, len(files)):
                return None
            arrays = {}
            for spec in manifest["arrays"]:
                path = folder / spec["file"]
                if path.stat().st_size != spec["bytes"]:
                    return None
                arrays[spec["name"]] = _map(path, spec, manifest["rows"])
            os.utime(folder / ACCESS)
        except (OSError, ValueError, KeyError, pa.ArrowException):
            # Missing (never built, evicted meanwhile) or damaged: not an entry to trust.
            return None
        return Entry(folder, manifest, arrays, files)

    def _trusted(self, manifest: dict[str, Any], material: dict[str, Any], files: int) -> bool:
        if manifest.get("complete") is not True or manifest.get("format") != FORMAT:
            return False
        if manifest.get("key") != material:
            return False  # a digest collision or a hand-edited folder: never another's data
        if not manifest.get("synced") and manifest.get("boot_id") != _boot_id():
            return False  # written before a reboot, maybe never flushed to disk
        return all(0 <= u[0] < files for u in manifest["units"])

    # ---- building ----------------------------------------------------------------------------

    def writer(
        self,
        name: str,
        material: dict[str, Any],
        snapshot: Any,
        spec: BatchSpec,
        schema: pa.Schema,
        estimate_rows: int,
        wait: bool = False,
        mode: str = WHOLE,
    ) -> Writer | None:
        """The writer of a new entry, holding its build lock; None when another process is
        building it (and not `wait`) or it exists already. Raises CacheError when the entry
        would not fit in the size limit.

        With `wait`, blocks until a concurrent builder is done, then returns None if that
        builder published the entry. `mode` tells other processes how this build goes
        (WHOLE or EPOCH, see wait_for_whole_build).
        """
        template = to_arrays([], spec)
        estimate = estimate_rows * row_bytes(template)
        if estimate > self.max_bytes:
            raise CacheError(
                f"reader cache: {name} needs about {estimate / 1e6:,.0f} MB, over the "
                f"{self.max_bytes / 1e6:,.0f} MB limit (RECLAKE_READER_CACHE_MAX_BYTES)"
            )
        fd = self._lock(name, wait)
        if fd is None:
            return None
        try:
            os.pwrite(fd, mode.encode(), 0)  # first: processes finding the lock taken read it
            if self.open(name, material, snapshot.files) is not None:
                _unlock(fd, name)
                return None  # built by the process we waited for
            self._remove_builds(name)  # leftovers of builders that died: we hold the lock
            self.evict(reserve=estimate, keep={name})
            key_types = {k: schema.field(k).type for k in spec.keys}
            try:
                writer = Writer(
                    self, name, material, fd, snapshot.files, template, key_types, estimate_rows
                )
            except OSError as exc:
                self._remove_builds(name)
                raise CacheError(f"reader cache: cannot allocate {name}: {exc}") from exc
        except BaseException:
            _unlock(fd, name)
            raise
        return writer

    def wait_for_whole_build(self, name: str) -> bool:
        """Wait for another process that builds the entry in one go (WHOLE); True once it is
        done or nobody builds it any more. False at once when the builder writes it through a
        training epoch (EPOCH: that can take as long as the training, so read Parquet
        meanwhile) or when this process is the builder."""
        path = self.root / LOCKS / f"{name}.lock"
        deadline = time.monotonic() + _MODE_SECONDS
        while True:
            try:
                mode = path.read_text()
            except OSError:
                return True
            if mode == EPOCH:
                return False
            if mode == WHOLE:
                fd = self._lock(name, wait=True) if name not in _held else None
                if fd is None:
                    return False
                _unlock(fd, name)
                return True
            # No mode yet: the builder has just taken the lock, or nobody holds it.
            fd = self._lock(name, wait=False)
            if fd is not None:
                _unlock(fd, name)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def _lock(self, name: str, wait: bool) -> int | None:
        """The entry's build lock (an flock on its lock file), or None if it is held."""
        with _held_lock:
            if name in _held:
                if wait:
                    raise CacheError(f"{name} is being built by this process already")
                return None
            _held.add(name)
        try:
            locks = self.root / LOCKS
            locks.mkdir(parents=True, exist_ok=True)
            path = locks / f"{name}.lock"
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    os.close(fd)
                    with _held_lock:
                        _held.discard(name)
                    return None
                # Lock files are deleted with their entry (clear, evict): make sure we did not
                # lock a file someone deleted while we waited for it.
                try:
                    same = os.stat(path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    return fd
                os.close(fd)
        except BaseException:
            with _held_lock:
                _held.discard(name)
            raise

    def _remove_builds(self, name: str) -> None:
        for folder in self.root.glob(f"{BUILD_PREFIX}{name}-*"):
            shutil.rmtree(folder, ignore_errors=True)

    def sync(self, name: str) -> bool:
        """Flush an entry's files to disk and mark it synced, so that it is trusted after a
        reboot too. Returns False when the entry is gone."""
        folder = self.root / name
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            for spec in manifest["arrays"]:
                with open(folder / spec["file"], "rb") as handle:
                    os.fsync(handle.fileno())
            _write_json(folder / MANIFEST, {**manifest, "synced": True})
        except (OSError, ValueError):
            return False
        return True

    # ---- listing and removal -----------------------------------------------------------------

    def entries(self) -> list[EntryInfo]:
        """Complete entries, least recently used first."""
        infos = []
        if not self.root.is_dir():
            return []
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                manifest = json.loads((folder / MANIFEST).read_text())
                access = (folder / ACCESS).stat().st_mtime
            except (OSError, ValueError):
                continue
            if manifest.get("complete") is not True:
                continue
            infos.append(
                EntryInfo(
                    name=folder.name,
                    snapshot_id=manifest["key"]["snapshot_id"],
                    table=manifest["key"]["table"],
                    rows=manifest["rows"],
                    bytes=manifest["bytes"],
                    created_at=manifest["created_at"],
                    last_access=access,
                    key=manifest["key"],
                )
            )
        return sorted(infos, key=lambda e: (e.last_access, e.name))

    def builds(self) -> list[tuple[str, bool]]:
        """Build folders present: (folder name, True while its builder still runs)."""
        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted(self.root.glob(f"{BUILD_PREFIX}*")):
            name = folder.name[len(BUILD_PREFIX) :].rsplit("-", 2)[0]
            fd = self._lock(name, wait=False)
            if fd is not None:
                _unlock(fd, name)
            out.append((folder.name, fd is None))
        return out

    def evict(self, reserve: int = 0, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Remove least recently used entries until the cache plus `reserve` bytes fits the
        size limit; entries in `keep` or being rebuilt stay. Returns the removed names.

        A process still reading a removed entry keeps its memory maps (POSIX keeps a
        deleted file's pages until its last mapping goes); the space returns after that.
        """
        self._remove_dead_builds()
        entries = self.entries()
        total = sum(e.bytes for e in entries) + reserve
        removed = []
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.name in keep or not self.remove(entry.name):
                continue
            total -= entry.bytes
            removed.append(entry.name)
        return removed

    def remove(self, name: str) -> bool:
        """Delete an entry (and stale builds of it); False if it is being built right now."""
        fd = self._lock(name, wait=False)
        if fd is None:
            return False
        try:
            self._remove_builds(name)
            folder = self.root / name
            if folder.exists():
                self._remove_folder(folder)
            with contextlib.suppress(FileNotFoundError):
                (self.root / LOCKS / f"{name}.lock").unlink()
        finally:
            _unlock(fd, name)
        return True

    def clear(self, snapshot_id: str | None = None) -> list[EntryInfo]:
        """Remove every entry (or every entry of one snapshot) not being built right now, and
        the builds abandoned by dead processes. Returns the removed entries."""
        removed = [
            e
            for e in self.entries()
            if (snapshot_id is None or e.snapshot_id == snapshot_id) and self.remove(e.name)
        ]
        self._remove_dead_builds(snapshot_id)
        return removed

    def _remove_dead_builds(self, snapshot_id: str | None = None) -> None:
        """Remove the build folders of builders that died (of one snapshot, or all)."""
        for folder, running in self.builds():
            name = folder[len(BUILD_PREFIX) :].rsplit("-", 2)[0]
            if not running and (snapshot_id is None or name.startswith(f"{snapshot_id}.")):
                fd = self._lock(name, wait=False)
                if fd is not None:  # still free: nobody started a build of it meanwhile
                    try:
                        shutil.rmtree(self.root / folder, ignore_errors=True)
                    finally:
                        _unlock(fd, name)

    def _remove_folder(self, folder: Path) -> None:
        # Renamed first so that no reader can open a half-deleted entry.
        trash = self.root / f"{TRASH_PREFIX}{folder.name}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _map(path: Path, spec: dict[str, Any], rows: int) -> Any:
    """A read-only view of one cached array (its pages shared by every process mapping it)."""
    if spec["dtype"] == "object":
        column = pa.ipc.open_file(pa.memory_map(str(path))).read_all().column(0)
        return _Objects(column)
    dtype, shape = np.dtype(spec["dtype"]), (rows, *spec["shape"])
    if spec["bytes"] != rows * dtype.itemsize * math.prod(spec["shape"]):
        raise ValueError(f"{path} holds {spec['bytes']} bytes, not {shape} {dtype}")
    if spec["bytes"] == 0:
        return np.empty(shape, dtype)  # mmap cannot map an empty file
    with open(path, "rb") as handle:
        memory = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _allocate(path: Path, template: np.ndarray, rows: int) -> np.ndarray:
    """A new file of `rows` rows of the template's dtype and row shape, allocated on disk
    (OSError when it does not fit) and mapped writable."""
    shape = (rows, *template.shape[1:])
    size = template.itemsize * math.prod(shape)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if size == 0:
            return np.empty(shape, template.dtype)  # mmap cannot map an empty file
        os.posix_fallocate(fd, 0, size)
        memory = mmap.mmap(fd, size)
    finally:
        os.close(fd)  # the map keeps the file open
    return np.frombuffer(memory, dtype=template.dtype).reshape(shape)


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """True when `a` is the view `b` (the converter filled the reserved rows in place)."""
    address = a.__array_interface__["data"][0]
    return a.shape == b.shape and address == b.__array_interface__["data"][0]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def _unlock(fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # no build mode left behind for the next process to misread
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    with _held_lock:
        _held.discard(name)
