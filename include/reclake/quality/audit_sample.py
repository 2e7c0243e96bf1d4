"""The audit's sample: a seeded draw of training-sample rows, stratified so that the rare
cases where point-in-time bugs hide are always checked.

Strata are read off the samples table itself (no bronze needed to draw):
- cold: the user or the item has no event in its longest window (the zero-window path: no
  state row, counts 0, ratios null, empty sequence);
- edge: the impression lies within EDGE_MINUTES of an hour boundary, or in the first or last
  hour of a UTC day (hour(t), the current-hour cut-off and attribution windows crossing into
  the next hour or date partition);
- sequence: the user played at least twice in the last hour or has a full sequence (where
  equal event times and the cut at the sequence length decide the order);
- rare_label: a rare positive label (liked, shared, finished).
Each stratum gets up to STRATUM_SHARE of the sample; the rest is a uniform draw from all
rows. The draw orders rows by a seeded 64-bit hash of the event id (`rank`; ties, never seen,
by the id), so a seed always picks the same rows of a table version, whatever the file
layout. JVM-free: pyarrow reads the narrow columns, numpy ranks and picks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reclake.features.definitions import (
    DEFINITIONS,
    SEQUENCE_LEN_COLUMN,
    FeatureDefinitions,
    window_column,
)

if TYPE_CHECKING:
    import pyarrow.dataset as ds

EDGE_MINUTES = 5
STRATUM_SHARE = 0.15
RARE_LABELS = ("liked", "shared", "finished")
STRATA = ("cold", "edge", "sequence", "rare_label")
RANDOM = "random"
RANK = "_rank"
# Rows hashed per step: bounds the padded byte matrix a step builds.
_HASH_CHUNK = 1 << 18
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Draw:
    """The event ids drawn, and per stratum the rows it holds and how many were drawn."""

    event_ids: tuple[str, ...]
    dates: tuple[str, ...]  # their sample_date partitions (ISO dates)
    strata: dict[str, dict[str, int]]


def columns(definitions: FeatureDefinitions = DEFINITIONS) -> list[str]:
    """The columns of training_samples the draw reads."""
    longest, shortest = _longest(definitions), _shortest(definitions)
    player = _player(definitions)
    wanted = ["event_id", "sample_date", "event_time", "event_hour", SEQUENCE_LEN_COLUMN]
    wanted += [
        window_column(e, a.name, longest)
        for e in definitions.entities
        for a in definitions.aggregations
    ]
    wanted += [window_column(player, "plays", shortest), *RARE_LABELS]
    return list(dict.fromkeys(wanted))


def strata(rows: pa.Table, definitions: FeatureDefinitions = DEFINITIONS) -> dict[str, np.ndarray]:
    """Stratum name -> boolean mask over `rows` (see the module doc); a null never selects."""
    longest, shortest = _longest(definitions), _shortest(definitions)
    counts = [a.name for a in definitions.aggregations]

    def all_of(masks):
        out = masks[0]
        for m in masks[1:]:
            out = pc.and_kleene(out, m)
        return out

    def any_of(masks):
        out = masks[0]
        for m in masks[1:]:
            out = pc.or_kleene(out, m)
        return out

    cold = any_of(
        [
            all_of([pc.equal(rows[window_column(e, a, longest)], 0) for a in counts])
            for e in definitions.entities
        ]
    )
    minute, hour = pc.minute(rows["event_time"]), pc.hour(rows["event_hour"])
    edge = any_of(
        [
            pc.less(minute, EDGE_MINUTES),
            pc.greater_equal(minute, 60 - EDGE_MINUTES),
            pc.is_in(hour, pa.array([0, 23], hour.type)),
        ]
    )
    player = _player(definitions)
    sequence = pc.or_kleene(
        pc.greater_equal(rows[window_column(player, "plays", shortest)], 2),
        pc.greater_equal(rows[SEQUENCE_LEN_COLUMN], definitions.sequence_length),
    )
    rare = any_of([rows[label] for label in RARE_LABELS])
    flags = dict(zip(STRATA, (cold, edge, sequence, rare), strict=True))
    return {name: _mask(flag) for name, flag in flags.items()}


def quotas(size: int, populations: dict[str, int]) -> dict[str, int]:
    """Rows to draw per stratum: up to STRATUM_SHARE of the sample each, never more than it
    holds; the random rest fills the sample (pure)."""
    cap = max(1, int(size * STRATUM_SHARE)) if size > 0 else 0
    return {name: min(cap, n) for name, n in populations.items()}


def rank(event_ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each id's UTF-8 bytes (uint64): the draw order. Each id is
    padded to whole 8-byte words, and each word and the length go through a 64-bit
    finalizer, so the ranks of similar ids are unrelated and equal seeds give equal ranks
    on any machine."""
    ids = event_ids.combine_chunks() if isinstance(event_ids, pa.ChunkedArray) else event_ids
    if ids.null_count:
        raise ValueError("event_id holds nulls: the draw needs every row's id")
    ids = ids.cast(pa.large_string())
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset : ids.offset + n + 1]
    data = ids.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    out = np.empty(n, np.uint64)
    # On an array: numpy warns of wrap-around on scalars, and the wrap is the point.
    start = _fmix(np.array([seed & 0xFFFFFFFFFFFFFFFF], np.uint64) ^ _GOLDEN)[0]
    for lo in range(0, n, _HASH_CHUNK):
        hi = min(n, lo + _HASH_CHUNK)
        words, lengths = _words(data, offsets[lo : hi + 1])
        h = _fmix(np.full(hi - lo, start, np.uint64) ^ lengths.astype(np.uint64))
        for column in range(words.shape[1]):
            # Only an id's own words count: its rank never depends on the ids beside it.
            own = lengths > 8 * column
            h = np.where(own, _fmix((h * _GOLDEN) ^ words[:, column]), h)
        out[lo:hi] = h
    return out


def draw_rows(
    rows: pa.Table, size: int, seed: int, definitions: FeatureDefinitions = DEFINITIONS
) -> Draw:
    """Draw up to `size` distinct event ids of `rows` (the columns of `columns()`)."""
    return draw_batches([rows], size, seed, definitions)


def draw_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    size: int,
    seed: int,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> Draw:
    """Draw up to `size` distinct event ids from rows arriving batch by batch: each
    stratum's quota, then a uniform fill, each the rows of lowest rank not yet drawn.

    Memory stays bounded by the sample, not the interval: per batch only the rows that can
    still be drawn are kept, the lowest-ranked 2 x `size` of each stratum and of all rows (a
    stratum's quota plus every row earlier picks could take; the same for the fill)."""
    populations = dict.fromkeys([*STRATA, RANDOM], 0)
    kept: pa.Table | None = None
    for batch in batches:
        rows = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        flags = strata(rows, definitions)
        for name, mask in flags.items():
            populations[name] += int(mask.sum())
        populations[RANDOM] += rows.num_rows
        ranked = pa.table(
            {
                "event_id": rows["event_id"],
                "sample_date": rows["sample_date"],
                RANK: rank(rows["event_id"], seed),
                **flags,
            }
        )
        kept = _prune(ranked if kept is None else pa.concat_tables([kept, ranked]), 2 * size)
    if kept is None:  # nothing in the interval
        return Draw((), (), {name: {"population": 0, "sampled": 0} for name in populations})
    return _pick(kept, size, populations)


def _prune(candidates: pa.Table, keep: int) -> pa.Table:
    """The candidates among the `keep` lowest-ranked of some stratum or of all (ties kept)."""
    ranks = candidates[RANK].to_numpy()
    wanted = np.zeros(len(ranks), bool)
    for name in [*STRATA, RANDOM]:
        inside = (
            np.arange(len(ranks)) if name == RANDOM else np.flatnonzero(_mask(candidates[name]))
        )
        wanted[_ranked_within(inside, ranks, keep)] = True
    return candidates.filter(pa.array(wanted))


def _pick(candidates: pa.Table, size: int, populations: dict[str, int]) -> Draw:
    """Each stratum's quota, then the fill, from the pruned candidates."""
    ids, ranks = candidates["event_id"], candidates[RANK].to_numpy()
    free = np.ones(len(ranks), bool)
    order: list[int] = []
    drawn: dict[str, int] = {}
    for name, quota in quotas(size, {name: populations[name] for name in STRATA}).items():
        # The sample never exceeds `size`; rows an earlier stratum took do not count.
        quota = min(quota, size - len(order))
        chosen = _lowest(np.flatnonzero(_mask(candidates[name]) & free), ranks, ids, quota)
        free[chosen] = False
        order += chosen
        drawn[name] = len(chosen)
    chosen = _lowest(np.flatnonzero(free), ranks, ids, max(0, size - len(order)))
    order += chosen
    drawn[RANDOM] = len(chosen)
    taken = candidates.select(["event_id", "sample_date"]).take(pa.array(order, pa.int64()))
    return Draw(
        tuple(taken["event_id"].to_pylist()),
        tuple(sorted({d.isoformat() for d in taken["sample_date"].to_pylist()})),
        {name: {"population": populations[name], "sampled": drawn[name]} for name in drawn},
    )


def draw(
    uri: str,
    version: int,
    where: ds.Expression | None,
    size: int,
    seed: int,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> Draw:
    """Draw from the rows of a table version that match `where`, read JVM-free batch by
    batch."""
    from reclake.quality.audit_recompute import scan_version

    batches = scan_version(uri, version, where, columns(definitions))
    return draw_batches(batches, size, seed, definitions)


def _ranked_within(candidates: np.ndarray, ranks: np.ndarray, k: int) -> np.ndarray:
    """The candidates ranked at or below the k-th lowest rank among them (ties kept)."""
    if len(candidates) <= k:
        return candidates
    kth = np.partition(ranks[candidates], k - 1)[k - 1]
    return candidates[ranks[candidates] <= kth]


def _lowest(candidates: np.ndarray, ranks: np.ndarray, ids: pa.ChunkedArray, k: int) -> list[int]:
    """The k candidates (row positions) of lowest (rank, id), in that order."""
    if k <= 0 or len(candidates) == 0:
        return []
    candidates = _ranked_within(candidates, ranks, k)  # ties kept, then cut by id
    names = ids.take(pa.array(candidates, pa.int64())).to_pylist()
    keyed = sorted(zip(ranks[candidates].tolist(), names, candidates.tolist(), strict=True))
    return [position for _, _, position in keyed[:k]]


def _words(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids between `offsets` as rows of little-endian 64-bit words (zero-padded), and
    their byte lengths."""
    starts, lengths = offsets[:-1], np.diff(offsets)
    width = max(8, -(-int(lengths.max(initial=0)) // 8) * 8)
    n = len(starts)
    if n and (lengths == lengths[0]).all() and lengths[0] == width:
        # Every id of one whole-word length (hex digests, say): the bytes are the matrix.
        flat = data[offsets[0] : offsets[0] + n * width]
        return flat.reshape(n, width).view("<u8"), lengths
    at = starts[:, None] + np.arange(width, dtype=np.int64)
    inside = np.arange(width) < lengths[:, None]
    padded = np.where(inside, data[np.minimum(at, max(0, len(data) - 1))] if len(data) else 0, 0)
    return np.ascontiguousarray(padded.astype(np.uint8)).view("<u8"), lengths


def _fmix(h):
    """A 64-bit finalizer (MurmurHash3's fmix64): every input bit moves every output bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * _M1
    h = h ^ (h >> np.uint64(33))
    h = h * _M2
    return h ^ (h >> np.uint64(33))


def _mask(flag: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(flag, False).to_numpy(zero_copy_only=False), bool)


def _longest(definitions: FeatureDefinitions):
    return max(definitions.windows, key=lambda w: w.hours)


def _shortest(definitions: FeatureDefinitions):
    return min(definitions.windows, key=lambda w: w.hours)


def _player(definitions: FeatureDefinitions):
    return next(e for e in definitions.entities if e.play_sequence)
