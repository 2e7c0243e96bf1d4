"""Pure sharding logic of the reader: every unit in exactly one stream, seeded epoch order."""

from __future__ import annotations

import os

import pytest

from reclake.reader.sharding import Stream, WorkUnit, epoch_units, shard, windows

UNITS = [WorkUnit(f"file:///t/part-{i // 3}.parquet", i % 3, 100 + i) for i in range(17)]


@pytest.mark.parametrize("count", [0, 1, 5, 16, 17])  # empty, fewer than streams, not divisible
@pytest.mark.parametrize("world_size, num_workers", [(1, 1), (2, 2), (3, 2), (4, 3)])
def test_each_unit_lands_in_exactly_one_stream(count, world_size, num_workers):
    units = epoch_units(UNITS[:count], seed=0, epoch=2, shuffle=True)
    parts = [
        shard(units, Stream(rank, world_size, worker, num_workers))
        for rank in range(world_size)
        for worker in range(num_workers)
    ]
    flat = [u for part in parts for u in part]
    assert sorted(flat) == sorted(UNITS[:count])
    assert len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced


def test_epoch_order_is_seeded():
    order = epoch_units(UNITS, seed=5, epoch=0, shuffle=True)
    assert order == epoch_units(list(reversed(UNITS)), seed=5, epoch=0, shuffle=True)
    assert order != epoch_units(UNITS, seed=5, epoch=1, shuffle=True)
    assert order != epoch_units(UNITS, seed=6, epoch=0, shuffle=True)
    assert epoch_units(list(reversed(UNITS)), seed=5, epoch=0, shuffle=False) == sorted(UNITS)


def test_windows_hold_at_least_min_rows_and_keep_order():
    groups = windows(UNITS, 250)
    assert [u for g in groups for u in g] == UNITS
    assert all(sum(u.num_rows for u in g) >= 250 for g in groups[:-1])
    assert all(sum(u.num_rows for u in g[:-1]) < 250 for g in groups)  # closed as soon as full


def test_invalid_stream_is_refused():
    with pytest.raises(ValueError):
        Stream(rank=2, world_size=2)


def test_cores_per_stream_counts_the_cpus_this_process_may_use():
    from reclake.reader.dataset import _cores_per_stream

    allowed = os.sched_getaffinity(0)
    assert _cores_per_stream(1) == len(allowed)
    assert _cores_per_stream(2) == max(1, len(allowed) // 2)
    assert _cores_per_stream(len(allowed) + 1) == 1  # never zero threads
    os.sched_setaffinity(0, {min(allowed)})  # as `taskset -c N` would
    try:
        assert _cores_per_stream(1) == 1
    finally:
        os.sched_setaffinity(0, allowed)
