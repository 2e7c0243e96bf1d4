"""The audit's JVM-free recompute on hand-made Arrow rows: sums per (entity, hour) added up
batch by batch, window edges, the play sequence's order, the attribution window, and the
text the audit compares times as. The whole recompute against bronze built by the real jobs
is tested in tests/integration/test_audit.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from reclake.features.definitions import DEFINITIONS, ITEM, USER
from reclake.quality.audit_recompute import (
    US_PER_HOUR,
    _attributed,
    _combine,
    _hour_rows,
    _newest_plays,
    _per_hour_type,
    _plays_by_user,
    _window_features,
    as_text,
)

H = datetime(2026, 11, 20, 10, tzinfo=UTC)
H_US = int(H.timestamp()) * 1_000_000
SUMS = ["watch_ms"]


def events(rows: list[tuple]) -> pa.Table:
    """(event_id, event_type, user_id, item_id, micros, watch_ms) as the scan keeps them."""
    names = ["event_id", "event_type", "user_id", "item_id", "_t_us", "watch_ms"]
    return pa.table(
        {n: [r[i] for r in rows] for i, n in enumerate(names)},
        schema=pa.schema(
            [
                ("event_id", pa.string()),
                ("event_type", pa.string()),
                ("user_id", pa.int64()),
                ("item_id", pa.int64()),
                ("_t_us", pa.int64()),
                ("watch_ms", pa.int64()),
            ]
        ),
    )


def hours_back(h: float) -> int:
    return H_US - int(h * US_PER_HOUR)


def test_batches_summed_per_hour_equal_one_pass_and_windows_keep_their_edges():
    rows = [
        ("a", "play", 1, 10, hours_back(7 * 24), 100),  # exactly 7d back: inside 7d
        ("b", "play", 1, 10, hours_back(7 * 24) - 1, 5),  # 1 µs earlier: outside
        ("c", "play", 1, 10, hours_back(24.5), None),  # 24h edge hour: outside 24h
        ("d", "play", 1, 10, hours_back(23.5), 7),
        ("e", "impression", 1, 10, hours_back(0.5), None),
        ("f", "play", 1, 10, H_US + 1, 1_000),  # in the sample's own hour: never counted
        ("g", "like", 2, 10, hours_back(1), None),
    ]
    table = events(rows)
    one_pass = _per_hour_type(table, "item_id", SUMS)
    batched = _combine(
        [_per_hour_type(table.slice(i, 2), "item_id", SUMS) for i in (0, 2, 4, 6)], SUMS
    )
    assert sorted(one_pass.to_pylist(), key=str) == sorted(batched.to_pylist(), key=str)

    item = _window_features(
        _hour_rows(batched, "item_id", DEFINITIONS)[10], H_US, ITEM, DEFINITIONS
    )
    assert (item["item_plays_1h"], item["item_plays_24h"], item["item_plays_7d"]) == (0, 1, 3)
    assert (item["item_watch_ms_24h"], item["item_watch_ms_7d"]) == (7, 107)
    assert item["item_impressions_1h"] == 1 and item["item_likes_1h"] == 1
    assert item["item_play_rate_24h"] == 1.0 and item["item_play_rate_1h"] == 0.0
    assert item["item_avg_watch_ms_7d"] == 107 / 3
    # No events at all: zeros, and ratios without a denominator are None.
    none = _window_features(None, H_US, USER, DEFINITIONS)
    assert none["user_plays_7d"] == 0 and none["user_play_rate_7d"] is None


def test_sequence_is_newest_first_with_ties_by_larger_event_id_and_stops_at_the_hour():
    rows = [
        ("p-old", "play", 1, 1, hours_back(7 * 24) - 1, None),  # before the look-back
        ("p-edge", "play", 1, 2, hours_back(7 * 24), None),  # its first µs: in
        ("tie-a", "play", 1, 3, hours_back(0.5), None),
        ("tie-b", "play", 1, 4, hours_back(0.5), None),
        ("now", "play", 1, 5, H_US, None),  # hour(t) itself: out
        ("imp", "impression", 1, 6, hours_back(0.2), None),
        ("other", "play", 2, 7, hours_back(1), None),
    ]
    plays = _plays_by_user(events(rows))
    assert _newest_plays(plays[1], H_US, DEFINITIONS) == [4, 3, 2]
    assert _newest_plays(plays[2], H_US, DEFINITIONS) == [7]
    assert _newest_plays(None, H_US, DEFINITIONS) == []
    many = events([(f"p{i:03d}", "play", 3, i, hours_back(1 + i / 100), None) for i in range(30)])
    assert _newest_plays(_plays_by_user(many)[3], H_US, DEFINITIONS) == list(range(20))


def test_attribution_window_is_closed_at_both_ends_and_unknown_watch_is_no_play_length():
    impression = {"_t_us": H_US}
    window = 30 * 60_000_000
    actions = [
        (H_US, "play", None),  # at t: in, no watch time
        (H_US + window, "share", None),  # exactly t + 30 min: in
        (H_US + window + 1, "like", None),  # 1 µs later: out
        (H_US - 1, "skip", None),  # before t: out
    ]
    got = _attributed(actions, impression, window)
    assert got == {
        "played": True,
        "watch_ms": 0,
        "longest_play_ms": None,
        "liked": False,
        "shared": True,
        "skipped": False,
    }
    plays = [(H_US + 1, "play", 4_000), (H_US + 2, "play", 9_000)]
    assert _attributed(plays, impression, window)["watch_ms"] == 13_000
    assert _attributed(plays, impression, window)["longest_play_ms"] == 9_000
    assert _attributed([(H_US - 1, "play", 5)], impression, window) is None


def test_times_are_compared_as_utc_text_with_microseconds():
    assert as_text(H_US + 5) == "2026-11-20T10:00:00.000005Z"
    assert as_text(-1) == "1969-12-31T23:59:59.999999Z"
    year_999 = int(
        (datetime(999, 1, 2, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    )
    assert as_text(year_999 * 1_000_000) == "0999-01-02T00:00:00.000000Z"
