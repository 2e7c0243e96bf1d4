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
rows. The draw orders rows by xxhash64(seed, event_id), so a seed always picks the same rows
of a table version, whatever the file layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reclake.features.definitions import (
    DEFINITIONS,
    SEQUENCE_LEN_COLUMN,
    FeatureDefinitions,
    window_column,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

EDGE_MINUTES = 5
STRATUM_SHARE = 0.15
RARE_LABELS = ("liked", "shared", "finished")
RANDOM = "random"


@dataclass(frozen=True)
class Draw:
    """The event ids drawn, and per stratum the rows it holds and how many were drawn."""

    event_ids: tuple[str, ...]
    dates: tuple[str, ...]  # their sample_date partitions (ISO dates)
    strata: dict[str, dict[str, int]]


def strata(definitions: FeatureDefinitions = DEFINITIONS) -> dict[str, Column]:
    """Stratum name -> boolean column over training_samples rows (see the module doc)."""
    from pyspark.sql import functions as F

    longest = max(definitions.windows, key=lambda w: w.hours)
    shortest = min(definitions.windows, key=lambda w: w.hours)
    counts = [a.name for a in definitions.aggregations]

    def silent(entity) -> Column:
        cols = [F.col(window_column(entity, a, longest)) == 0 for a in counts]
        out = cols[0]
        for c in cols[1:]:
            out = out & c
        return out

    cold = None
    for e in definitions.entities:
        cold = silent(e) if cold is None else cold | silent(e)
    minute = F.minute("event_time")
    hour = F.hour("event_hour")
    player = next(e for e in definitions.entities if e.play_sequence)
    sequence = (F.col(window_column(player, "plays", shortest)) >= 2) | (
        F.col(SEQUENCE_LEN_COLUMN) >= definitions.sequence_length
    )
    rare = F.lit(False)
    for label in RARE_LABELS:
        rare = rare | F.col(label)
    return {
        "cold": cold,
        "edge": (minute < EDGE_MINUTES) | (minute >= 60 - EDGE_MINUTES) | hour.isin(0, 23),
        "sequence": sequence,
        "rare_label": rare,
    }


def quotas(size: int, populations: dict[str, int]) -> dict[str, int]:
    """Rows to draw per stratum: up to STRATUM_SHARE of the sample each, never more than it
    holds; the random rest fills the sample (pure)."""
    cap = max(1, int(size * STRATUM_SHARE)) if size > 0 else 0
    return {name: min(cap, n) for name, n in populations.items()}


def draw(
    samples: DataFrame, size: int, seed: int, definitions: FeatureDefinitions = DEFINITIONS
) -> Draw:
    """Draw up to `size` distinct event ids: each stratum's quota, then a uniform fill."""
    from pyspark.sql import functions as F

    flags = strata(definitions)
    narrow = samples.select(
        "event_id",
        F.col("sample_date").cast("string").alias("sample_date"),
        F.xxhash64(F.lit(seed), F.col("event_id")).alias("_rank"),
        *(flag.alias(name) for name, flag in flags.items()),
    ).persist()
    try:
        totals = narrow.agg(
            F.count(F.lit(1)).alias(RANDOM),
            *(F.count_if(name).alias(name) for name in flags),
        ).collect()[0]
        populations = {name: int(totals[name]) for name in flags}
        picked: dict[str, str] = {}  # event_id -> sample_date, in draw order
        drawn: dict[str, int] = {}
        pairs = narrow.select("event_id", "sample_date", "_rank")
        for name, quota in quotas(size, populations).items():
            # Rows an earlier stratum took do not count; the sample never exceeds `size`.
            quota = min(quota, size - len(picked))
            rows = narrow.where(name).select(*pairs.columns).orderBy("_rank")
            fresh = [r for r in rows.limit(quota + len(picked)).collect() if r[0] not in picked]
            picked.update({r[0]: r[1] for r in fresh[:quota]})
            drawn[name] = len(fresh[:quota])
        rest = max(0, size - len(picked))
        ordered = pairs.orderBy("_rank").limit(rest + len(picked)).collect()
        fill = {r[0]: r[1] for r in ordered if r[0] not in picked}
        fill = dict(list(fill.items())[:rest])
        picked.update(fill)
        drawn[RANDOM] = len(fill)
    finally:
        narrow.unpersist()
    populations[RANDOM] = int(totals[RANDOM])
    return Draw(
        tuple(picked),
        tuple(sorted(set(picked.values()))),
        {name: {"population": populations[name], "sampled": drawn[name]} for name in drawn},
    )
