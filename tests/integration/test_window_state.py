"""Interval window values: starting from a stored checkpoint equals starting from the tiles at
every hour (and the hourly step equals the window computation), a gap or a tile rebuild
forces a bootstrap, and re-runs rewrite the same content.

Inputs are the seeded random events of the brute-force samples test (8 days + 3 hours, late
and beyond-lateness events, ties) with its extra 3h window.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from reclake.features.definitions import Window
from reclake.features.state import (
    Base,
    build_window_states,
    nonempty,
    read_states,
    stale_reason,
    step_values,
    tile_versions,
    window_values,
)
from reclake.features.tiles import build_tiles
from reclake.io import read_table
from reclake.tables import table
from reclake.timeutil import HOUR, iso
from tests.integration.test_samples_bruteforce import DEFS, H0, random_inputs
from tests.integration.test_tiles import write_bronze, write_dims, write_labeled


def _build_inputs(spark, settings) -> None:
    events, samples, users, items = random_inputs()
    write_dims(spark, settings, users, items)
    write_bronze(spark, settings, events)
    write_labeled(spark, settings, samples)
    last_arrival = max(e["arrival_hour"] for e in events)
    build_tiles(spark, settings, H0 - timedelta(days=8, hours=1), last_arrival + HOUR, DEFS)


def _rows(df, key: str) -> dict:
    return {(r[key], r["hour"]): r.asDict(recursive=True) for r in df.collect()}


def _tiles(spark, settings, entity):
    return read_table(spark, table(entity.tile_table), settings)


def _probes(spark, tiles, entity, hours):
    """Every key the tiles know, asked at each of these hours."""
    from pyspark.sql import functions as F

    stamps = F.array(*[F.lit(h).cast("timestamp") for h in hours])
    return tiles.select(entity.key).distinct().select(entity.key, F.explode(stamps).alias("hour"))


@pytest.mark.integration
def test_checkpoint_base_equals_tiles_base_every_hour(spark, settings):
    _build_inputs(spark, settings)
    week = timedelta(hours=7 * 24)
    # An interval across the hours where the oldest tiles leave the 7-day window.
    users = _tiles(spark, settings, DEFS.entities[0])
    oldest = users.agg({"hour": "min"}).first()[0].replace(tzinfo=UTC)
    first = oldest + week
    hours = [first + n * HOUR for n in range(4)]
    for entity in DEFS.entities:
        tiles = _tiles(spark, settings, entity).localCheckpoint()
        # The checkpoint: the values at `first` computed from the tiles alone.
        from_tiles = Base(first - week, stored=False)
        checkpoint = window_values(
            None, tiles, _probes(spark, tiles, entity, [first]), entity, from_tiles, first, DEFS
        )
        checkpoint = nonempty(checkpoint, entity, DEFS).localCheckpoint()
        probes = _probes(spark, tiles, entity, hours[1:])
        stored = Base(first, stored=True)
        got = window_values(checkpoint, tiles, probes, entity, stored, hours[-1], DEFS)
        want = window_values(
            None, tiles, probes, entity, Base(hours[1] - week, stored=False), hours[-1], DEFS
        )
        assert _rows(got, entity.key) == _rows(want, entity.key)
        # The hourly path's step (a hash aggregate) gives the window's values one hour on.
        step = step_values(checkpoint, tiles, entity, hours[1], DEFS)
        one = window_values(
            checkpoint, tiles, _probes(spark, tiles, entity, hours[1:2]), entity, stored,
            hours[1], DEFS,
        )  # fmt: skip
        stepped = _rows(nonempty(step, entity, DEFS), entity.key)
        assert stepped == _rows(nonempty(one, entity, DEFS), entity.key) and stepped
        # Tiles must have left the 7-day window, or the subtraction went untested.
        leaving = [h - HOUR - week for h in hours[1:]]
        assert tiles.filter(tiles["hour"].isin(leaving)).count() > 0, entity.name
        if entity.play_sequence:
            seqs = [r["recent_plays"] for r in _rows(got, entity.key).values()]
            assert max(len(s) for s in seqs) == DEFS.sequence_length


@pytest.mark.integration
@pytest.mark.slow
def test_gap_rebuild_and_rerun(spark, settings):
    _build_inputs(spark, settings)

    def stored(hours):
        return {e.name: _rows(read_states(spark, settings, e, hours), e.key) for e in DEFS.entities}

    first = build_window_states(spark, settings, H0, H0 + HOUR, DEFS)
    assert first.bootstrap_reason == "no stored state" and first.checkpoint == iso(H0)
    stepped = build_window_states(spark, settings, H0 + HOUR, H0 + 3 * HOUR, DEFS)
    assert stepped.bootstrap_reason is None
    # Only the interval's last hour is stored: the next run's checkpoint.
    assert stored([H0 + HOUR]) == {e.name: {} for e in DEFS.entities}
    want = stored([H0 + 2 * HOUR])
    assert all(want.values())

    # Re-runs rewrite the same content, from the checkpoint or from the tiles.
    again = build_window_states(spark, settings, H0 + HOUR, H0 + 3 * HOUR, DEFS)
    assert again.bootstrap_reason is None and again.rows == stepped.rows
    assert stored([H0 + 2 * HOUR]) == want
    boot = build_window_states(spark, settings, H0 + 2 * HOUR, H0 + 3 * HOUR, DEFS, bootstrap=True)
    assert boot.bootstrap_reason == "asked for"
    assert stored([H0 + 2 * HOUR]) == want

    # A gap: no state of H0 + 3h, so H0 + 4h bootstraps.
    gap = build_window_states(spark, settings, H0 + 4 * HOUR, H0 + 5 * HOUR, DEFS)
    assert gap.bootstrap_reason == "no stored state"

    # Other definitions never reuse a state.
    versions = tile_versions(settings, DEFS)
    assert stale_reason(settings, H0 + 2 * HOUR, versions, DEFS) is None
    other = DEFS.with_window(Window("2h", 2))
    assert stale_reason(settings, H0 + 2 * HOUR, versions, other) == (
        "computed for other feature definitions"
    )

    # A re-run of an old arrival hour rebuilds tiles outside the state's look-back: still fine.
    week = timedelta(hours=DEFS.max_lookback_hours)
    build_tiles(spark, settings, H0 - week - 10 * HOUR, H0 - week - 9 * HOUR, DEFS)
    versions = tile_versions(settings, DEFS)
    assert stale_reason(settings, H0 + 2 * HOUR, versions, DEFS) is None
    # Tiles the state consumed are rebuilt: stale.
    build_tiles(spark, settings, H0 - 30 * HOUR, H0 - 29 * HOUR, DEFS)
    versions = tile_versions(settings, DEFS)
    reason = stale_reason(settings, H0 + 2 * HOUR, versions, DEFS)
    assert reason is not None and reason.startswith("tiles rebuilt since by arrival hour")
    rebuilt = build_window_states(spark, settings, H0 + 3 * HOUR, H0 + 4 * HOUR, DEFS)
    assert rebuilt.bootstrap_reason == reason
    # The rebuilt tiles hold the same events, so the bootstrapped state matches one computed
    # from the stale checkpoint.
    fresh = {}
    for e in DEFS.entities:
        checkpoint = read_states(spark, settings, e, [H0 + 2 * HOUR])
        tiles = _tiles(spark, settings, e)
        probes = _probes(
            spark, tiles.select(e.key).unionByName(checkpoint.select(e.key)), e, [H0 + 3 * HOUR]
        )
        values = window_values(
            checkpoint, tiles, probes, e, Base(H0 + 2 * HOUR, stored=True), H0 + 3 * HOUR, DEFS
        )
        fresh[e.name] = _rows(nonempty(values, e, DEFS), e.key)
    assert stored([H0 + 3 * HOUR]) == fresh
