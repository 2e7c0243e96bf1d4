"""Training samples: hand-computed point-in-time cases, one edge each, exact expected values.

One small lake (module scope) holds the events below; samples are built for hour H.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclake.config import Settings
from reclake.features.definitions import sample_feature_columns
from reclake.features.samples import (
    InputsNotFinalError,
    assert_inputs_final,
    build_training_samples,
)
from reclake.features.tiles import build_tiles, record_tile_build
from reclake.io import read_table
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between
from tests.integration.test_tiles import (
    assert_delta_rs_reads_same_rows,
    event,
    impression,
    write_bronze,
    write_dims,
    write_labeled,
)

H = datetime(2026, 11, 20, 10, tzinfo=UTC)  # the sample hour
MS = timedelta(milliseconds=1)
D7 = timedelta(days=7)

EVENTS = [
    # user 1 -----------------------------------------------------------------------------------
    event("u1_prev", "play", H - MS, user_id=1, item_id=10, watch_ms=2000),  # last ms before H
    event("u1_imp", "impression", H - timedelta(minutes=30), user_id=1, item_id=10),
    event("u1_now", "play", H, user_id=1, item_id=11, watch_ms=999),  # same hour: excluded
    event("u1_now2", "play", H + timedelta(minutes=20), user_id=1, item_id=11, watch_ms=999),
    event("u1_edge_in", "play", H - D7, user_id=1, item_id=12, watch_ms=4000),  # 7d: included
    event("u1_edge_out", "play", H - D7 - MS, user_id=1, item_id=13, watch_ms=8000),  # excluded
    event("t_a", "play", H - 5 * HOUR, user_id=1, item_id=14, watch_ms=100),  # tie with t_b
    event("t_b", "play", H - 5 * HOUR, user_id=1, item_id=15, watch_ms=200),
    event("u1_like", "like", H - 2 * HOUR, user_id=1, item_id=10),
    # 3 hours late: beyond the allowed 2, flagged in bronze and excluded.
    event("u1_beyond", "play", H - 3 * HOUR, user_id=1, item_id=16, watch_ms=5000, arrival=H),
    # user 2: inactive for the last 3 days --------------------------------------------------------
    event("u2_imp", "impression", H - timedelta(hours=72, minutes=30), user_id=2, item_id=10),
    event(
        "u2_play", "play", H - timedelta(hours=72, minutes=30), user_id=2, item_id=10, watch_ms=700
    ),
    # user 3: plays but no impressions (zero denominators) ----------------------------------------
    event("u3_play", "play", H - 2 * HOUR, user_id=3, item_id=10, watch_ms=300),
    # hour H-1, arrives at H+1 (2 hours late, within lateness): folded into hour H-1.
    event(
        "u3_late",
        "play",
        H - timedelta(minutes=50),
        user_id=3,
        item_id=11,
        watch_ms=50,
        arrival=H + HOUR,
    ),
]

SAMPLES = [
    impression("s1", H, user_id=1, item_id=10, played=True, watch_ms=5000),  # exactly on H
    impression("s2", H + timedelta(minutes=45), user_id=1, item_id=20),
    impression("s3", H + timedelta(minutes=10), user_id=2, item_id=10, liked=True),
    impression("s4", H + timedelta(minutes=30), user_id=3, item_id=11, skipped=True),
    impression("s5", H + HOUR - MS, user_id=4, item_id=99),  # unknown user and item
]

USERS = [
    (1, "US", "ios", "18-24", H - timedelta(days=400)),
    (2, "DE", "android", "25-34", H - timedelta(days=40)),
    (3, "BR", "web", "45+", H - timedelta(days=4)),
]
ITEMS = [
    (10, "music", 60_000, 1, H - timedelta(days=30)),
    (11, "cooking-asmr", 30_000, 1, H - timedelta(minutes=90)),  # untracked category: other
    (12, "comedy", 10_000, 1, H - timedelta(days=30)),
    (13, "music", 10_000, 1, H - timedelta(days=30)),
    (14, "sports", 10_000, 1, H - timedelta(days=30)),
    (15, "music", 10_000, 1, H - timedelta(days=30)),
    (16, "music", 10_000, 1, H - timedelta(days=30)),
    (20, "comedy", 20_000, 2, H + timedelta(minutes=5)),  # published during hour H: age 0
]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Inputs written, tiles built for every arrival hour samples of H need, samples built
    twice (the second run must not change the content)."""
    settings = Settings(
        lake_root=(tmp_path_factory.mktemp("samples") / "lake").as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=2,
    )
    write_dims(spark, settings, USERS, ITEMS)
    write_bronze(spark, settings, EVENTS)
    write_labeled(spark, settings, SAMPLES)
    build_tiles(spark, settings, H - D7 - 2 * HOUR, H + 2 * HOUR)
    first = build_training_samples(spark, settings, H, H + HOUR)
    rows_first = _rows(spark, settings)
    second = build_training_samples(spark, settings, H, H + HOUR)
    return settings, _rows(spark, settings), (first, second, rows_first)


def _rows(spark, settings) -> dict[str, dict]:
    df = read_table(spark, table("training_samples"), settings)
    return {r["event_id"]: r.asDict() for r in df.collect()}


def pick(row: dict, *names: str) -> tuple:
    return tuple(row[n] for n in names)


@pytest.mark.integration
def test_rerun_is_idempotent(lake):
    _, rows, (first, second, rows_first) = lake
    assert (first.rows, second.rows) == (5, 5)
    assert rows == rows_first
    assert sorted(rows) == ["s1", "s2", "s3", "s4", "s5"]


@pytest.mark.integration
def test_windows_are_complete_hours_before_the_sample_hour(lake):
    _, rows, _ = lake
    s1 = rows["s1"]  # impression at exactly 10:00:00.000
    # 1h: only the play at 09:59:59.999 and the 09:30 impression; 10:00 and 10:20 plays excluded.
    assert pick(s1, "user_plays_1h", "user_impressions_1h", "user_watch_ms_1h") == (1, 1, 2000)
    # 24h adds the tied plays at 05:00 and the like; the beyond-lateness play is excluded.
    assert pick(s1, "user_plays_24h", "user_likes_24h", "user_watch_ms_24h") == (3, 1, 2300)
    # 7d: the play at exactly H-7d is in, the one 1 ms earlier is out.
    assert pick(s1, "user_plays_7d", "user_watch_ms_7d", "user_impressions_7d") == (4, 6300, 1)
    assert pick(s1, "user_play_rate_1h", "user_play_rate_24h", "user_avg_watch_ms_7d") == (
        1.0,
        3.0,
        1575.0,
    )
    assert pick(s1, "user_share_rate_24h", "user_skip_rate_7d") == (0.0, 0.0)
    # s2 is later in the same hour: identical window features.
    feats = [c for c in s1 if c.startswith("user_") and "item_category" not in c]
    assert pick(rows["s2"], *feats) == pick(s1, *feats)


@pytest.mark.integration
def test_item_window_features(lake):
    _, rows, _ = lake
    s1 = rows["s1"]
    assert pick(s1, "item_plays_1h", "item_impressions_1h", "item_play_rate_1h") == (1, 1, 1.0)
    assert pick(s1, "item_plays_24h", "item_likes_24h", "item_avg_watch_ms_24h") == (2, 1, 1150.0)
    assert pick(s1, "item_plays_7d", "item_impressions_7d", "item_play_rate_7d") == (3, 2, 1.5)
    # item 11: only the late play of hour H-1 (no impressions: rate null).
    s4 = rows["s4"]
    assert pick(s4, "item_plays_1h", "item_watch_ms_1h", "item_play_rate_1h") == (1, 50, None)


@pytest.mark.integration
def test_inactive_user_gets_zeros_not_nulls(lake):
    _, rows, _ = lake
    s3 = rows["s3"]  # user 2, last active 72.5 hours ago
    assert pick(s3, "user_plays_1h", "user_impressions_24h", "user_watch_ms_24h") == (0, 0, 0)
    assert pick(s3, "user_play_rate_24h", "user_avg_watch_ms_1h") == (None, None)
    assert pick(s3, "user_plays_7d", "user_impressions_7d", "user_play_rate_7d") == (1, 1, 1.0)
    s5 = rows["s5"]  # user 4 and item 99 never seen anywhere
    features = sample_feature_columns()
    assert {c.name: s5[c.name] for c in features if c.kind != "ratio"} == {
        c.name: 0 for c in features if c.kind != "ratio"
    }
    assert all(s5[c.name] is None for c in features if c.kind == "ratio")
    assert pick(s5, "user_last_played", "user_last_played_len") == ([], 0)
    assert pick(s5, "item_category", "user_country", "item_age_hours") == (None, None, None)


@pytest.mark.integration
def test_zero_denominator_ratio_is_null_and_late_event_counts(lake):
    _, rows, _ = lake
    s4 = rows["s4"]  # user 3: plays, no impressions; one play arrived 2 hours late
    assert pick(s4, "user_plays_1h", "user_plays_24h", "user_impressions_24h") == (1, 2, 0)
    assert pick(s4, "user_play_rate_24h", "user_like_rate_1h") == (None, None)
    assert pick(s4, "user_avg_watch_ms_1h", "user_avg_watch_ms_24h") == (50.0, 175.0)


@pytest.mark.integration
def test_sequence_newest_first_ties_by_event_id_excludes_current_hour(lake):
    _, rows, _ = lake
    # 10 @ H-1ms, then t_b (15) before t_a (14) at the same time, then 12 @ H-7d.
    assert pick(rows["s1"], "user_last_played", "user_last_played_len") == ([10, 15, 14, 12], 4)
    assert rows["s3"]["user_last_played"] == [10]
    assert rows["s4"]["user_last_played"] == [11, 10]


@pytest.mark.integration
def test_category_plays_and_static_attributes(lake):
    _, rows, _ = lake
    s1, s2, s4 = rows["s1"], rows["s2"], rows["s4"]
    cats = ("user_plays_music_7d", "user_plays_comedy_7d", "user_plays_sports_7d")
    assert pick(s1, *cats, "user_plays_other_7d") == (2, 1, 1, 0)
    assert s1["user_plays_item_category_7d"] == 2  # item 10 is music
    assert s2["user_plays_item_category_7d"] == 1  # item 20 is comedy
    assert s4["user_plays_item_category_7d"] == 1  # item 11 is untracked: "other"
    assert pick(s1, "item_category", "item_duration_ms", "item_age_hours") == (
        "music",
        60000,
        720.0,
    )
    assert pick(s4, "item_category", "item_age_hours") == ("cooking-asmr", 1.5)
    assert s2["item_age_hours"] == 0.0
    assert pick(s1, "user_country", "user_device", "user_age_bucket") == ("US", "ios", "18-24")
    assert pick(s1, "played", "watch_ms", "position", "request_id") == (True, 5000, 3, "req-s1")
    assert str(s1["sample_date"]) == "2026-11-20"


@pytest.mark.integration
def test_samples_readable_by_delta_rs(spark, lake):
    settings, _, _ = lake
    assert assert_delta_rs_reads_same_rows(spark, settings, "training_samples") == 5


@pytest.mark.integration
def test_statistics_only_on_the_declared_columns(lake):
    import pyarrow as pa
    from deltalake import DeltaTable

    settings, _, _ = lake
    spec = table("training_samples")
    dt = DeltaTable(spec.uri(settings))
    assert dt.metadata().configuration["delta.dataSkippingStatsColumns"] == ",".join(
        spec.stats_columns
    )
    adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    assert adds and all(a["num_records"] for a in adds)
    with_min = {k.removeprefix("min.") for k in adds[0] if k.startswith("min.")}
    assert with_min == set(spec.stats_columns)
    # The skipping the reader and the maintenance need still works on those columns.
    assert all(a["min.user_id"] is not None and a["max.event_hour"] for a in adds)


@pytest.mark.integration
def test_asked_too_early_is_a_clear_error(spark, settings):
    write_labeled(spark, settings, [impression("x", H + timedelta(minutes=5))])
    with pytest.raises(InputsNotFinalError, match="build_tiles has not processed arrival 170"):
        assert_inputs_final(spark, settings, H, H + HOUR)
    # Every arrival hour of the 7-day look-back is built, but not H+1: tiles of H-1 may still
    # receive late events.
    for h in hours_between(H - D7, H + HOUR):
        record_tile_build(settings, h)
    with pytest.raises(InputsNotFinalError, match=r"1 hour\(s\): 2026-11-20T11:00:00Z"):
        build_training_samples(spark, settings, H, H + HOUR)
    record_tile_build(settings, H + HOUR)
    assert_inputs_final(spark, settings, H, H + HOUR)  # final now
    # Hour H+1 has no labels yet.
    with pytest.raises(InputsNotFinalError, match="label_impressions has not processed 1 hour"):
        assert_inputs_final(spark, settings, H, H + 2 * HOUR)
