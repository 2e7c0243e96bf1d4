"""Randomized check: every feature of every sample equals a brute-force pure-Python computation
straight from the events (not from tiles). The definitions carry an extra 3h window, added
through the definitions API, to show a new window reaches the samples with correct values."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from reclake.features.definitions import (
    DEFINITIONS,
    OTHER_CATEGORY,
    Window,
    category_tile_column,
    window_column,
)
from reclake.features.samples import build_training_samples
from reclake.features.tiles import build_tiles
from reclake.io import read_table
from reclake.tables import table
from reclake.timeutil import HOUR, floor_hour
from tests.integration.test_tiles import (
    event,
    impression,
    write_bronze,
    write_dims,
    write_labeled,
)

H0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
SAMPLE_HOURS = 3
DEFS = DEFINITIONS.with_window(Window("3h", 3))
CATEGORIES = ("music", "comedy", "sports", "cooking-asmr")  # the last one is not tracked


def random_inputs(seed: int = 7, sample_hours: int = SAMPLE_HOURS, n_events: int = 420):
    """Seeded events over 8 days + the sample hours (denser recently), impressions over the
    sample hours, dimensions."""
    rng = random.Random(seed)
    span = timedelta(days=8, hours=sample_hours)
    events = []
    for _ in range(n_events):
        recent = rng.random() < 0.5
        back = rng.uniform(0, 30 * 3600) if recent else rng.uniform(0, span.total_seconds())
        # Whole minutes, so some events of a user share an event_time (sequence ties).
        at = H0 + timedelta(hours=sample_hours) - timedelta(minutes=int(back // 60) + 1)
        late = rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        kind = rng.choices(["impression", "play", "like", "share", "skip"], [4, 4, 1, 1, 1])[0]
        events.append(
            event(
                f"e{rng.getrandbits(24):06x}",
                kind,
                at,
                user_id=rng.choices([1, 2, 3, 4, 5, 6], [6, 2, 2, 1, 1, 1])[0],
                item_id=rng.randint(1, 8),
                watch_ms=rng.randint(0, 10_000) if kind == "play" else None,
                arrival=floor_hour(at) + late * HOUR,
            )
        )
    samples = []
    for n in range(10 * sample_hours):
        hour = n % sample_hours  # every sample hour has labels
        at = H0 + hour * HOUR + timedelta(seconds=rng.randint(0, 3599))
        samples.append(
            impression(f"s{n:02d}", at, user_id=rng.randint(1, 7), item_id=rng.randint(1, 9))
        )
    users = [(u, "US", "ios", "18-24", H0 - timedelta(days=90)) for u in range(1, 6)]
    items = [
        (i, rng.choice(CATEGORIES), 1000 * i, 1, H0 - timedelta(hours=rng.randint(1, 500)))
        for i in range(1, 8)  # item 8 plays happen but it has no dimension row
    ]
    return events, samples, users, items


def brute_force(sample: dict, events: list[dict], items: list[tuple]) -> dict:
    """Expected features of one sample, straight from the events."""
    h = floor_hour(sample["event_time"])
    valid = [e for e in events if not e["beyond_lateness"]]
    category = {i[0]: i[1] for i in items}
    out: dict = {}
    for entity in DEFS.entities:
        mine = [e for e in valid if e[entity.key] == sample[entity.key]]
        for w in DEFS.windows:
            inside = [e for e in mine if h - w.hours * HOUR <= e["event_time"] < h]
            for a in DEFS.aggregations:
                hits = [e for e in inside if e["event_type"] == a.event_type]
                value = len(hits) if a.sum_of is None else sum(e[a.sum_of] or 0 for e in hits)
                out[window_column(entity, a.name, w)] = value
            for r in DEFS.ratios:
                num = out[window_column(entity, r.numerator, w)]
                den = out[window_column(entity, r.denominator, w)]
                out[window_column(entity, r.name, w)] = num / den if den else None
        if entity.category_plays:

            def bucket(item_id):
                c = category.get(item_id)
                return c if c in DEFS.categories else OTHER_CATEGORY

            for w in DEFS.category_windows:
                plays = [
                    e
                    for e in mine
                    if e["event_type"] == "play" and h - w.hours * HOUR <= e["event_time"] < h
                ]
                for c in DEFS.category_buckets:
                    name = window_column(entity, category_tile_column(c), w)
                    out[name] = sum(1 for e in plays if bucket(e["item_id"]) == c)
                out[window_column(entity, "plays_item_category", w)] = sum(
                    1 for e in plays if bucket(e["item_id"]) == bucket(sample["item_id"])
                )
        if entity.play_sequence:
            lookback = h - DEFS.sequence_lookback_hours * HOUR
            plays = [
                e for e in mine if e["event_type"] == "play" and lookback <= e["event_time"] < h
            ]
            plays.sort(key=lambda e: (e["event_time"], e["event_id"]), reverse=True)
            out["user_last_played"] = [e["item_id"] for e in plays[: DEFS.sequence_length]]
            out["user_last_played_len"] = len(out["user_last_played"])
    return out


def assert_samples_match(spark, settings, events, samples, items) -> list[dict]:
    """Every built sample equals the brute force; returns the expected features."""
    got = {
        r["event_id"]: r.asDict()
        for r in read_table(spark, table("training_samples"), settings).collect()
    }
    assert sorted(got) == sorted(s["event_id"] for s in samples)
    all_expected = []
    for s in samples:
        expected = brute_force(s, events, items)
        all_expected.append(dict(expected))
        row = got[s["event_id"]]
        for seq in ("user_last_played", "user_last_played_len"):
            assert row[seq] == expected.pop(seq), (s["event_id"], seq)
        mismatches = [
            (k, row[k], want)
            for k, want in expected.items()
            if (row[k] is None) != (want is None)
            or (want is not None and row[k] != pytest.approx(want, rel=1e-12))
        ]
        assert mismatches == [], s["event_id"]
    return all_expected


def _build(spark, settings, events, samples, users, items) -> None:
    write_dims(spark, settings, users, items)
    write_bronze(spark, settings, events)
    write_labeled(spark, settings, samples)
    last_arrival = max(e["arrival_hour"] for e in events)
    build_tiles(spark, settings, H0 - timedelta(days=8, hours=1), last_arrival + HOUR, DEFS)


@pytest.mark.integration
def test_every_sample_feature_matches_brute_force(spark, settings):
    events, samples, users, items = random_inputs()
    assert sum(e["beyond_lateness"] for e in events) > 0  # some events must be excluded
    _build(spark, settings, events, samples, users, items)
    # All hours but the last as one interval, the last as the hourly DAG runs it: the step
    # from the checkpoint the interval run stored.
    last = H0 + (SAMPLE_HOURS - 1) * HOUR
    result = build_training_samples(spark, settings, H0, last, DEFS)
    hourly = build_training_samples(spark, settings, last, last + HOUR, DEFS)
    assert hourly.bootstrapped == 0
    assert result.rows + hourly.rows == len(samples)
    all_expected = assert_samples_match(spark, settings, events, samples, items)
    assert "user_plays_3h" in all_expected[0]  # the window added via the API
    # The random data must exercise the interesting paths, or the test proves little.
    assert len(all_expected[0]) == len(DEFS.sample_feature_columns()) + 2
    assert max(e["user_last_played_len"] for e in all_expected) == 20
    assert any(e["user_plays_3h"] != e["user_plays_24h"] for e in all_expected)
    assert any(e["user_play_rate_1h"] is None for e in all_expected)
    assert any(e["item_plays_1h"] > 0 for e in all_expected)


@pytest.mark.integration
@pytest.mark.slow
def test_hour_by_hour_runs_rewrite_the_interval_run(spark, settings):
    """Hour by hour (each run from the checkpoint the one before stored) gives the table the
    interval run wrote."""
    events, samples, users, items = random_inputs()
    _build(spark, settings, events, samples, users, items)
    build_training_samples(spark, settings, H0, H0 + SAMPLE_HOURS * HOUR, DEFS)
    table_rows = read_table(spark, table("training_samples"), settings).collect()
    for n in range(SAMPLE_HOURS):
        hourly = build_training_samples(spark, settings, H0 + n * HOUR, H0 + (n + 1) * HOUR, DEFS)
        assert hourly.bootstrapped == (1 if n == 0 else 0)
    rerun_rows = read_table(spark, table("training_samples"), settings).collect()
    assert sorted(map(repr, rerun_rows)) == sorted(map(repr, table_rows))


@pytest.mark.integration
def test_multi_day_interval_in_chunks_matches_brute_force(spark, settings):
    """Two days of sample hours in chunks of 17 hours: each chunk starts from the checkpoint
    the one before stored, and every feature of every hour is still exact."""
    hours = 48
    events, samples, users, items = random_inputs(seed=11, sample_hours=hours, n_events=900)
    _build(spark, settings, events, samples, users, items)
    result = build_training_samples(spark, settings, H0, H0 + hours * HOUR, DEFS, chunk_hours=17)
    assert (result.rows, result.chunks, result.bootstrapped) == (len(samples), 3, 1)
    all_expected = assert_samples_match(spark, settings, events, samples, items)
    assert max(e["user_last_played_len"] for e in all_expected) == 20
    assert any(e["user_plays_7d"] != e["user_plays_24h"] for e in all_expected)


@pytest.mark.integration
@pytest.mark.slow
def test_sub_interval_rerun_across_a_chunk_boundary_rewrites_the_same_rows(spark, settings):
    """Re-running a sub-interval across a chunk boundary (from the tiles: no checkpoint
    there) rewrites the rows the chunked run wrote."""
    hours = 48
    events, samples, users, items = random_inputs(seed=11, sample_hours=hours, n_events=900)
    _build(spark, settings, events, samples, users, items)
    build_training_samples(spark, settings, H0, H0 + hours * HOUR, DEFS, chunk_hours=17)
    table_rows = read_table(spark, table("training_samples"), settings).collect()
    again = build_training_samples(spark, settings, H0 + 15 * HOUR, H0 + 20 * HOUR, DEFS)
    assert again.bootstrapped == 1
    rerun_rows = read_table(spark, table("training_samples"), settings).collect()
    assert sorted(map(repr, rerun_rows)) == sorted(map(repr, table_rows))
