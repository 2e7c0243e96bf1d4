"""The audit's draw (quality.audit_sample): the seeded rank, the strata and the picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from reclake.quality.audit_sample import (
    RANDOM,
    columns,
    draw_batches,
    draw_rows,
    quotas,
    rank,
    strata,
)

T0 = datetime(2026, 11, 20, tzinfo=UTC)
COUNTS = [c for c in columns() if c.endswith("_7d")]


def hex_ids(n: int, salt: int = 0) -> list[str]:
    """32-hex-character ids, as the generator writes them."""
    rng = np.random.default_rng(salt)
    return [bytes(row).hex() for row in rng.integers(0, 256, (n, 16), dtype=np.uint8)]


def samples(n: int, seed: int = 0) -> pa.Table:
    """n training-sample rows with the draw's columns: a few of each stratum, some nulls."""
    rng = np.random.default_rng(seed)
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 48, n)]
    hours = [t.replace(minute=0) for t in times]
    when = pa.timestamp("us", tz="UTC")
    data = {
        "event_id": pa.array(hex_ids(n, seed)),
        "sample_date": pa.array([h.date() for h in hours], pa.date32()),
        "event_time": pa.array(times, when),
        "event_hour": pa.array(hours, when),
        "user_last_played_len": pa.array(rng.integers(0, 21, n)),
        "user_plays_1h": pa.array(rng.integers(0, 3, n)),
    }
    for entity in ("user_", "item_"):
        silent = rng.random(n) < 0.05  # no event in the longest window: every count 0
        for name in (c for c in COUNTS if c.startswith(entity)):
            data[name] = pa.array(np.where(silent, 0, rng.integers(0, 9, n)))
    for label in ("liked", "shared", "finished"):
        values = rng.random(n) < 0.02
        data[label] = pa.array([None if i % 97 == 0 else bool(v) for i, v in enumerate(values)])
    return pa.table(data)


def test_rank_is_seeded_and_the_same_whatever_the_ids_lengths_or_chunks():
    ids = hex_ids(3000)
    first = rank(pa.array(ids), 7)
    assert first.dtype == np.uint64 and len(set(first.tolist())) == len(ids)
    assert np.array_equal(first, rank(pa.array(ids), 7))
    assert not np.array_equal(first, rank(pa.array(ids), 8))
    # One longer id sends the batch down the padded path; chunked arrays hash the same.
    mixed = rank(pa.array([*ids, "a-longer-id-than-the-others-0123456789"]), 7)
    assert np.array_equal(mixed[:-1], first)
    chunked = rank(pa.chunked_array([pa.array(ids[:1000]), pa.array(ids[1000:])]), 7)
    assert np.array_equal(chunked, first)
    # Bytes past the end, the length and every word count: near-equal ids rank apart.
    near = rank(pa.array(["e1", "e1\x00", "e10", "e2", "", "x" * 8, "x" * 9]), 7)
    assert len(set(near.tolist())) == 7


def test_rank_spreads_sequential_ids_evenly():
    ids = pa.array([f"e{i}" for i in range(100_000)])
    r = rank(ids, 0)
    # Each eighth of the 64-bit range holds about an eighth of the ids.
    counts = np.bincount((r >> np.uint64(61)).astype(np.int64), minlength=8)
    assert counts.min() > 11_500 and counts.max() < 13_500
    # The 1,000 lowest under two seeds are nearly disjoint.
    low0 = set(np.argsort(r)[:1000].tolist())
    low1 = set(np.argsort(rank(ids, 1))[:1000].tolist())
    assert len(low0 & low1) < 50


def test_rank_refuses_null_ids():
    with pytest.raises(ValueError, match="nulls"):
        rank(pa.array(["a", None]), 0)


def test_strata_follow_their_definitions_and_a_null_never_selects():
    rows = samples(4000)
    flags = strata(rows)
    d = rows.to_pydict()
    for i in range(rows.num_rows):
        cold = any(all(d[c][i] == 0 for c in COUNTS if c.startswith(e)) for e in ("user_", "item_"))
        minute, hour = d["event_time"][i].minute, d["event_hour"][i].hour
        labels = [d[x][i] for x in ("liked", "shared", "finished")]
        assert flags["cold"][i] == cold
        assert flags["edge"][i] == (minute < 5 or minute >= 55 or hour in (0, 23))
        assert flags["sequence"][i] == (
            d["user_plays_1h"][i] >= 2 or d["user_last_played_len"][i] >= 20
        )
        assert flags["rare_label"][i] == any(v is True for v in labels)
    assert all(0 < m.sum() < rows.num_rows for m in flags.values())


def test_draw_takes_each_stratums_quota_fills_at_random_and_never_repeats():
    rows = samples(20_000)
    sample = draw_rows(rows, 1000, seed=3)
    assert len(sample.event_ids) == len(set(sample.event_ids)) == 1000
    flags = strata(rows)
    position = {e: i for i, e in enumerate(rows["event_id"].to_pylist())}
    picked = np.zeros(rows.num_rows, bool)
    picked[[position[e] for e in sample.event_ids]] = True
    for name, quota in quotas(1000, {n: int(m.sum()) for n, m in flags.items()}).items():
        assert sample.strata[name] == {"population": int(flags[name].sum()), "sampled": quota}
        assert (picked & flags[name]).sum() >= quota
    assert sample.strata[RANDOM]["population"] == rows.num_rows
    assert sum(s["sampled"] for s in sample.strata.values()) == 1000
    dates = rows["sample_date"].to_pylist()
    assert sample.dates == tuple(sorted({dates[position[e]].isoformat() for e in sample.event_ids}))
    # The uniform fill is the lowest-ranked rows left: nothing unpicked ranks below them.
    ranks = rank(rows["event_id"], 3)
    fill = sample.event_ids[-sample.strata[RANDOM]["sampled"] :]
    assert ranks[~picked].min() > max(ranks[position[e]] for e in fill)


def test_draw_is_the_same_whatever_the_row_order_and_moves_with_the_seed():
    rows = samples(5000)
    shuffled = rows.take(pa.array(np.random.default_rng(1).permutation(rows.num_rows)))
    assert draw_rows(rows, 300, seed=5) == draw_rows(shuffled, 300, seed=5)
    other = draw_rows(rows, 300, seed=6)
    assert len(set(other.event_ids) & set(draw_rows(rows, 300, seed=5).event_ids)) < 150


def test_a_sample_larger_than_the_rows_takes_them_all_once():
    rows = samples(40)
    sample = draw_rows(rows, 1000, seed=0)
    assert sorted(sample.event_ids) == sorted(rows["event_id"].to_pylist())
    assert draw_rows(rows.slice(0, 0), 10, seed=0).event_ids == ()


def test_batch_by_batch_draws_what_one_table_draws():
    rows = samples(30_000, seed=4)
    whole = draw_rows(rows, 200, seed=9)
    assert draw_batches(rows.to_batches(max_chunksize=777), 200, seed=9) == whole
    assert draw_batches([], 200, seed=9) == draw_rows(rows.slice(0, 0), 200, seed=9)
    assert draw_batches([], 200, seed=9).strata[RANDOM] == {"population": 0, "sampled": 0}


def test_between_batches_only_the_lowest_ranked_of_each_stratum_and_of_all_are_kept():
    from reclake.quality.audit_sample import RANK, _prune

    ranked = pa.table(
        {
            "event_id": [f"e{i}" for i in range(10)],
            "sample_date": pa.array([T0.date()] * 10, pa.date32()),
            RANK: pa.array([9, 1, 8, 2, 7, 3, 6, 4, 5, 0], pa.uint64()),
            "cold": [False] * 10,
            "edge": [True, False, True, False, True, False, True, False, False, False],
            "sequence": [False] * 10,
            "rare_label": [False] * 10,
        }
    )
    kept = _prune(ranked, 2)
    # All rows' lowest two (e9: 0, e1: 1) and edge's lowest two (e6: 6, e4: 7).
    assert sorted(kept["event_id"].to_pylist()) == ["e1", "e4", "e6", "e9"]
