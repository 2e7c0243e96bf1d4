"""Batches from DataLoader workers to the main process: each batch (or bundle) is one
shared-memory buffer plus a layout, and each worker reuses its buffers once the main process
lets go of them.

A fresh shared-memory buffer per batch costs more than filling it: the kernel zeroes and maps
every page in the worker, then unmaps and frees them once the main process is done with it.
So a worker keeps a small pool. The first byte of each buffer says whether the main process
holds it: the worker sets it when it sends the buffer, the main process clears it when the
last tensor viewing the buffer is freed, and the worker refills only cleared buffers. A buffer
the main process never releases (a batch kept forever, or never received) is simply not
reused; the worker allocates another one.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# Start of each tensor in a packed buffer (cache-line aligned, any dtype fits); the header
# before the payload holds the "held by the main process" flag in its first byte.
ALIGN = 64
_HEADER = ALIGN
# Buffers a worker keeps for reuse: DataLoader's prefetch_factor (2) in its queue, one or two
# held by the training loop and one being filled, with room to spare.
_POOL_SIZE = 8

# (key, dtype, row shape, bytes per row) of each tensor of a packed buffer.
Layout = list[tuple[str, np.dtype, tuple[int, ...], int]]


def aligned(nbytes: int) -> int:
    """nbytes rounded up to ALIGN."""
    return -(-nbytes // ALIGN) * ALIGN


def carve(memory: np.ndarray, layout: Layout, rows: int) -> dict[str, np.ndarray]:
    """Typed, shaped views of consecutive aligned slices of one byte buffer."""
    views, offset = {}, 0
    for key, dtype, row_shape, row_bytes in layout:
        size = rows * row_bytes
        views[key] = memory[offset : offset + size].view(dtype).reshape(rows, *row_shape)
        offset += aligned(size)
    return views


class BufferPool:
    """Shared-memory buffers of one worker, refilled once the main process released them."""

    def __init__(self, size: int = _POOL_SIZE) -> None:
        self._size = size
        self._buffers: list[tuple[torch.Tensor, np.ndarray]] = []  # (whole buffer, its flag)

    def take(self, nbytes: int) -> torch.Tensor:
        """A shared uint8 tensor of nbytes, marked held by the main process until released."""
        free = [i for i, (_, flag) in enumerate(self._buffers) if not flag[0]]
        fits = [i for i in free if self._buffers[i][0].numel() >= _HEADER + nbytes]
        if fits:
            whole, flag = self._buffers[fits[0]]
        else:
            storage = torch.UntypedStorage._new_shared(_HEADER + nbytes)
            whole = torch.empty(0, dtype=torch.uint8).set_(storage)
            flag = whole[:1].numpy()
            if free:  # a free buffer too small for this size: replace it
                self._buffers[free[0]] = (whole, flag)
            elif len(self._buffers) < self._size:
                self._buffers.append((whole, flag))
        flag[0] = 1
        return whole[_HEADER : _HEADER + nbytes]


class SharedBatch(dict):
    """A batch whose tensors are views of one shared-memory buffer. It pickles (from a
    DataLoader worker to the main process) as that buffer plus the layout, and unpickles as a
    plain dict of views: one shared-memory handle per batch instead of one per tensor."""

    def __init__(self, items: dict[str, Any], buffer: torch.Tensor, layout: Layout, rows: int):
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
            # A tensor was replaced: pickle tensors one by one (the buffer is never released,
            # so its worker never reuses it).
            return dict, (dict(self),)
        rest = {k: v for k, v in self.items() if k not in self._views}
        return _unpack, (*self._packed, rest, list(self))


def _unpack(buffer: torch.Tensor, layout: Layout, rows: int, rest: dict, order: Sequence) -> dict:
    # Every view below keeps `buffer` alive; once the last one is freed the worker may reuse it.
    weakref.finalize(buffer, _release, buffer.untyped_storage())
    views = carve(buffer.numpy(), layout, rows)
    return {k: torch.from_numpy(views[k]) if k in views else rest[k] for k in order}


def _release(storage: torch.UntypedStorage) -> None:
    storage[0] = 0
