"""Per-feature distributions of a snapshot beside another one (drift at a glance): histograms on
shared bins, null rates, the statistics `diff` reports and the PSI the validation gate uses.
JVM-free (pyarrow over the snapshots' manifests); `reclake snapshots drift` and the Airflow UI
view both read it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reclake.config import Settings
from reclake.quality.checks import psi
from reclake.snapshots.diff import column_stats, numeric_columns
from reclake.snapshots.model import Snapshot
from reclake.snapshots.read import arrow_schema, read_arrow_dataset
from reclake.snapshots.registry import list_snapshots, resolve

DEFAULT_BINS = 20


@dataclass(frozen=True)
class FeatureProfile:
    """One column of a snapshot (and of its baseline, when there is one) on shared bins."""

    column: str
    edges: list[float]  # len(counts) + 1 bin edges, shared by both snapshots
    counts: list[int]  # non-null values per bin
    stats: dict[str, Any]  # mean, min, max, null_count (as in `snapshots diff`)
    rows: int
    baseline_counts: list[int] | None = None
    baseline_stats: dict[str, Any] | None = None
    baseline_rows: int | None = None

    @property
    def null_rate(self) -> float:
        """Share of rows where the column is null (0 for an empty snapshot)."""
        return self.stats["null_count"] / self.rows if self.rows else 0.0

    @property
    def baseline_null_rate(self) -> float | None:
        """The baseline's null rate, None without a baseline."""
        if self.baseline_stats is None or self.baseline_rows is None:
            return None
        return self.baseline_stats["null_count"] / self.baseline_rows if self.baseline_rows else 0.0

    @property
    def psi(self) -> float | None:
        """Population stability index from the baseline's histogram to this one."""
        if self.baseline_counts is None or not sum(self.counts) or not sum(self.baseline_counts):
            return None
        return round(psi(fractions(self.baseline_counts), fractions(self.counts)), 4)


def fractions(counts: list[int]) -> list[float]:
    """Counts per bin as shares of their sum."""
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def shared_edges(lo: float | None, hi: float | None, bins: int, integer: bool) -> list[float]:
    """Bin edges covering [lo, hi]: one bin per value for a small integer range (counts read
    best that way), else `bins` equal-width bins; a single value gets one unit-wide bin."""
    if lo is None or hi is None:
        return []
    if integer and hi - lo + 1 <= bins:
        return [lo - 0.5 + i for i in range(int(hi - lo) + 2)]
    if lo == hi:
        return [lo - 0.5, hi + 0.5]
    width = (hi - lo) / bins
    return [lo + i * width for i in range(bins)] + [hi]


def bin_counts(values: pa.ChunkedArray | pa.Array, edges: list[float]) -> list[int]:
    """Non-null values per bin [e_i, e_i+1) (the last bin includes its upper edge)."""
    n = len(edges) - 1
    if n < 1:
        return []
    x = pc.cast(pc.drop_null(values), pa.float64())
    x = pc.filter(x, pc.invert(pc.is_nan(x)))
    width = (edges[-1] - edges[0]) / n
    index = pc.floor(pc.divide(pc.subtract(x, edges[0]), width))
    index = pc.cast(pc.min_element_wise(pc.max_element_wise(index, 0), n - 1), pa.int64())
    counts = [0] * n
    for pair in pc.value_counts(index).to_pylist():
        counts[pair["values"]] = pair["counts"]
    return counts


def feature_columns(snap: Snapshot) -> list[str]:
    """The columns profiled: the declared sample features of training_samples, else every
    numeric column (ids included: a table without declared features has nothing better)."""
    numeric = numeric_columns(arrow_schema(snap))
    if snap.table != "training_samples":
        return numeric
    from reclake.features.definitions import sample_feature_columns

    declared = {c.name for c in sample_feature_columns()}
    return [c for c in numeric if c in declared]


def previous_snapshot(settings: Settings, snap: Snapshot) -> Snapshot | None:
    """The live snapshot of the same table published just before `snap`, if any."""
    live = list_snapshots(settings, snap.table)
    ids = [s.id for s in live]
    if snap.id not in ids or ids.index(snap.id) == 0:
        return None
    return live[ids.index(snap.id) - 1]


def profile(
    settings: Settings, ref: str, against: str | None = None, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """Profiles of every feature of snapshot `ref` beside `against` (default: the previous
    live snapshot of its table; none for the first)."""
    snap = resolve(settings, ref)
    base = resolve(settings, against) if against else previous_snapshot(settings, snap)
    columns = feature_columns(snap)
    data = read_arrow_dataset(snap, columns=columns).to_table()
    base_columns = [c for c in columns if base and c in arrow_schema(base).names]
    base_data = read_arrow_dataset(base, columns=base_columns).to_table() if base else None
    stats = column_stats(data)
    base_stats = column_stats(base_data) if base_data is not None else {}
    features = []
    for c in columns:
        both = [s for s in (stats[c], base_stats.get(c)) if s and s["min"] is not None]
        lo = min((s["min"] for s in both), default=None)
        hi = max((s["max"] for s in both), default=None)
        edges = shared_edges(*_finite(lo, hi), bins, pa.types.is_integer(data.schema.field(c).type))
        in_base = c in base_stats
        features.append(
            FeatureProfile(
                column=c,
                edges=edges,
                counts=bin_counts(data.column(c), edges),
                stats=stats[c],
                rows=data.num_rows,
                baseline_counts=bin_counts(base_data.column(c), edges) if in_base else None,
                baseline_stats=base_stats.get(c),
                baseline_rows=base_data.num_rows if in_base else None,
            )
        )
    return {"snapshot": _ident(snap), "baseline": _ident(base), "features": features}


def _ident(snap: Snapshot | None) -> dict[str, Any] | None:
    if snap is None:
        return None
    return {"id": snap.id, "version": snap.version, "rows": snap.row_count}


def _finite(lo: float | None, hi: float | None) -> tuple[float | None, float | None]:
    """NaN or infinite bounds cannot be binned: treat them as no values."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None, None
    return lo, hi
