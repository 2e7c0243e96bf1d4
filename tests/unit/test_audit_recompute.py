"""The audit's JVM-free recompute on hand-made Arrow rows: sums per (entity, hour) added up
batch by batch, window edges, the play sequence's order, the attribution window, and the
text the audit compares times as. The whole recompute against bronze built by the real jobs
is tested in tests/integration/test_audit.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reclake.features.definitions import DEFINITIONS, ITEM, USER
from reclake.quality.audit_recompute import (
    US_PER_HOUR,
    HourSums,
    _attributed,
    _exact_bincount,
    _hour_index,
    _newest_plays,
    _plays_by_user,
    _window_features,
    as_text,
)

H = datetime(2026, 11, 20, 10, tzinfo=UTC)
H_US = int(H.timestamp()) * 1_000_000
DATES = [date(2026, 11, d) for d in range(12, 21)]  # the 7-day look-back of 10:00 and its day


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


def add(sums: HourSums, table: pa.Table) -> None:
    """Add events of the sampled items the way the scan does."""
    item = pc.index_in(table["item_id"], value_set=sums.keys).fill_null(-1).to_numpy()
    hour = _hour_index(table["_t_us"].to_numpy(), DATES)
    terms = [
        (
            pc.equal(table["event_type"], a.event_type).to_numpy(zero_copy_only=False),
            None if a.sum_of is None else pc.fill_null(table[a.sum_of], 0).to_numpy(),
        )
        for a in DEFINITIONS.aggregations
    ]
    sums.add(item, hour, terms)


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
    one_pass, batched = (HourSums(pa.array([10, 11]), DATES, DEFINITIONS) for _ in range(2))
    add(one_pass, events(rows))
    for i in (0, 2, 4, 6):
        add(batched, events(rows[i : i + 2]))
    assert np.array_equal(one_pass.sums, batched.sums) and one_pass.sums.sum() > 0
    assert batched.of(12) is None and batched.of(11).sums.sum() == 0

    item = _window_features(batched.of(10), H_US, ITEM, DEFINITIONS)
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


def test_sums_stay_exact_beyond_a_doubles_integers():
    big = np.array([2**52 + 1, 2**52 + 1, 3], dtype=np.int64)
    cells = np.array([0, 0, 1])
    assert _exact_bincount(cells, big, 3).tolist() == [2**53 + 2, 3, 0]
    assert _exact_bincount(cells, None, 3).tolist() == [2, 1, 0]


def test_an_event_outside_its_event_date_is_an_error_not_a_wrong_hour():
    assert _hour_index(np.array([H_US + 1]), DATES).tolist() == [8 * 24 + 10]
    with pytest.raises(ValueError, match="event_date"):
        _hour_index(np.array([hours_back(11)]), DATES[-1:])
    with pytest.raises(ValueError, match="event_date"):  # a date between two scanned ones
        _hour_index(np.array([hours_back(5 * 24)]), [DATES[0], DATES[-1]])
