"""Rolling window state: stepping hour by hour equals a direct bootstrap from the tiles, a gap
or a tile rebuild forces a bootstrap, and re-runs rewrite the same content.

Inputs are the seeded random events of the brute-force samples test (8 days + 3 hours, late
and beyond-lateness events, ties) with its extra 3h window.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from reclake.features.definitions import Window
from reclake.features.state import (
    bootstrap_state,
    build_window_states,
    read_states,
    stale_reason,
    step_state,
    tile_versions,
)
from reclake.features.tiles import build_tiles
from reclake.io import read_table
from reclake.tables import table
from reclake.timeutil import HOUR
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


@pytest.mark.integration
def test_stepping_equals_bootstrap_every_hour(spark, settings):
    _build_inputs(spark, settings)
    week = timedelta(hours=7 * 24)
    # Step across the hour where the oldest tile leaves the 7-day window.
    users = _tiles(spark, settings, DEFS.entities[0])
    oldest = users.agg({"hour": "min"}).first()[0].replace(tzinfo=UTC)
    hours = [oldest + week + n * HOUR for n in range(3)]
    for entity in DEFS.entities:
        tiles = _tiles(spark, settings, entity).localCheckpoint()
        state = bootstrap_state(tiles, entity, hours[0], DEFS).localCheckpoint()
        for hour in hours[1:]:
            stepped = step_state(state, tiles, entity, hour, DEFS).localCheckpoint()
            want = _rows(bootstrap_state(tiles, entity, hour, DEFS), entity.key)
            assert _rows(stepped, entity.key) == want, hour
            state = stepped
        # Tiles must have left the 7-day window, or the subtraction went untested.
        leaving = [h - HOUR - week for h in hours[1:]]
        assert tiles.filter(tiles["hour"].isin(leaving)).count() > 0, entity.name
        if entity.play_sequence:
            seqs = [r["recent_plays"] for r in _rows(state, entity.key).values()]
            assert max(len(s) for s in seqs) == DEFS.sequence_length


@pytest.mark.integration
def test_gap_rebuild_and_rerun(spark, settings):
    _build_inputs(spark, settings)

    def stored(hours):
        return {e.name: _rows(read_states(spark, settings, e, hours), e.key) for e in DEFS.entities}

    first = build_window_states(spark, settings, H0, H0 + HOUR, DEFS)
    assert first.bootstrap_reason == "no stored state"
    stepped = build_window_states(spark, settings, H0 + HOUR, H0 + 3 * HOUR, DEFS)
    assert stepped.bootstrap_reason is None
    hours = [H0 + HOUR, H0 + 2 * HOUR]
    want = stored(hours)
    assert all(want.values())

    # Re-runs rewrite the same content, whether stepped or bootstrapped.
    again = build_window_states(spark, settings, H0 + HOUR, H0 + 3 * HOUR, DEFS)
    assert again.bootstrap_reason is None and again.rows == stepped.rows
    assert stored(hours) == want
    boot = build_window_states(spark, settings, H0 + 2 * HOUR, H0 + 3 * HOUR, DEFS, bootstrap=True)
    assert boot.bootstrap_reason == "asked for"
    assert stored(hours) == want

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
    # The rebuilt tiles hold the same events, so the bootstrapped state matches a step.
    fresh = {
        e.name: _rows(
            step_state(
                read_states(spark, settings, e, [H0 + 2 * HOUR]),
                _tiles(spark, settings, e),
                e,
                H0 + 3 * HOUR,
                DEFS,
            ),
            e.key,
        )
        for e in DEFS.entities
    }
    assert stored([H0 + 3 * HOUR]) == fresh
