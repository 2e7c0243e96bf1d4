"""Work units of a snapshot and how one epoch splits them: deterministic order, a seeded
per-epoch shuffle, then round-robin across ranks and, within a rank, across DataLoader workers.

Every unit lands in exactly one (rank, worker) stream, so every row is read exactly once per
epoch whatever the unit count (streams differ by at most one unit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, order=True)
class WorkUnit:
    """One Parquet row group of a snapshot file: the smallest piece read on its own."""

    path: str  # absolute URI of the data file
    row_group: int
    num_rows: int  # rows in the row group before any filter (from the Parquet footer)
    # The snapshot's SnapshotFile (partition values); identity is (path, row_group).
    file: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Stream:
    """Which slice of the epoch this iterator reads: a rank of the job and a worker of that rank."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1  # 1 for the main process (DataLoader num_workers=0)

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.world_size and 0 <= self.worker < self.num_workers):
            raise ValueError(f"invalid stream {self}")


def epoch_rng(seed: int, epoch: int, *extra: int) -> np.random.Generator:
    """A Generator seeded from (seed, epoch, ...): independent streams, same numbers every run."""
    return np.random.default_rng([seed, epoch, *extra])


def epoch_units(units: Sequence[WorkUnit], seed: int, epoch: int, shuffle: bool) -> list[WorkUnit]:
    """All units in this epoch's order: sorted, then permuted by (seed, epoch) when shuffling."""
    ordered = sorted(units)
    if not shuffle:
        return ordered
    order = epoch_rng(seed, epoch).permutation(len(ordered))
    return [ordered[i] for i in order]


def shard(units: Sequence[WorkUnit], stream: Stream) -> list[WorkUnit]:
    """The units of one stream: round-robin over ranks, then over the rank's workers."""
    return list(units[stream.rank :: stream.world_size][stream.worker :: stream.num_workers])


def windows(units: Sequence[WorkUnit], min_rows: int) -> list[list[WorkUnit]]:
    """Consecutive groups of units holding at least `min_rows` rows each (the last may hold fewer).

    Groups are fixed by footer row counts, not by filtered counts, so they are known without
    reading data; a shuffle window's memory is bounded by min_rows + one row group.
    """
    groups: list[list[WorkUnit]] = []
    current: list[WorkUnit] = []
    rows = 0
    for unit in units:
        current.append(unit)
        rows += unit.num_rows
        if rows >= min_rows:
            groups.append(current)
            current, rows = [], 0
    if current:
        groups.append(current)
    return groups


def current_stream(rank: int | None = None, world_size: int | None = None) -> Stream:
    """This iterator's stream: explicit rank/world_size, else torch.distributed, else 0 of 1;
    the worker comes from torch.utils.data.get_worker_info()."""
    import torch.distributed as dist
    from torch.utils.data import get_worker_info

    if rank is None or world_size is None:
        if dist.is_available() and dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        else:
            rank, world_size = 0, 1
    info = get_worker_info()
    worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
    return Stream(rank, world_size, worker, num_workers)
