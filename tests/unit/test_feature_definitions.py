"""Feature definitions: the generated column names, types and kinds (no Spark)."""

from __future__ import annotations

import pytest

from reclake.features.definitions import (
    DEFINITIONS,
    ITEM,
    USER,
    Aggregation,
    Ratio,
    Window,
    sample_feature_columns,
)


def test_sample_feature_columns_names_types_kinds():
    cols = {c.name: c for c in sample_feature_columns()}
    # 2 entities x 3 windows x (6 aggregations + 5 ratios) + user 7d plays of 10 tracked
    # categories + "other" + the impression item's category.
    assert len(cols) == 2 * 3 * (6 + 5) + 11 + 1 == 78
    assert (cols["user_plays_24h"].dtype, cols["user_plays_24h"].kind) == ("BIGINT", "count")
    assert (cols["item_like_rate_7d"].dtype, cols["item_like_rate_7d"].kind) == ("DOUBLE", "ratio")
    assert cols["user_watch_ms_1h"].kind == "sum"
    assert cols["item_avg_watch_ms_24h"].kind == "ratio"
    assert cols["user_plays_music_7d"].kind == "count"
    assert cols["user_plays_other_7d"].kind == "count"
    assert cols["user_plays_item_category_7d"].kind == "count"
    assert "item_plays_music_7d" not in cols  # per-category plays are a user feature only


def test_sample_columns_keys_labels_sequence_static():
    names = [n for n, _ in DEFINITIONS.sample_columns()]
    assert names[:7] == [
        "event_id",
        "request_id",
        "user_id",
        "item_id",
        "position",
        "event_time",
        "event_hour",
    ]
    types = dict(DEFINITIONS.sample_columns())
    assert types["user_last_played"] == "ARRAY<BIGINT> NOT NULL"
    assert types["user_plays_7d"] == "BIGINT NOT NULL"
    assert types["user_play_rate_7d"] == "DOUBLE"  # ratios may be null
    assert names[-1] == "sample_date"
    assert {"item_category", "item_age_hours", "user_country", "user_device"} <= set(names)
    assert len(names) == len(set(names))


def test_adding_a_window_is_one_call_and_adds_its_columns():
    with_3h = DEFINITIONS.with_window(Window("3h", 3))
    added = {c.name for c in with_3h.sample_feature_columns()} - {
        c.name for c in DEFINITIONS.sample_feature_columns()
    }
    assert len(added) == 2 * (6 + 5)
    assert {"user_plays_3h", "item_skip_rate_3h", "user_avg_watch_ms_3h"} <= added
    assert with_3h.max_lookback_hours == DEFINITIONS.max_lookback_hours == 168
    assert len(DEFINITIONS.windows) == 3  # the shared definitions are immutable
    assert DEFINITIONS.with_window(Window("14d", 336)).max_lookback_hours == 336


def test_adding_an_aggregation_reaches_tiles_and_samples():
    more = DEFINITIONS.with_aggregation(Aggregation("impression_count", "impression"))
    assert ("impression_count", "BIGINT NOT NULL") in more.tile_columns(ITEM)
    names = {c.name for c in more.sample_feature_columns()}
    assert {"user_impression_count_1h", "item_impression_count_7d"} <= names
    assert len(names) == 78 + 2 * 3


def test_tile_columns():
    user = [n for n, _ in DEFINITIONS.tile_columns(USER)]
    assert user[:8] == [
        "user_id",
        "hour",
        "impressions",
        "plays",
        "likes",
        "shares",
        "skips",
        "watch_ms",
    ]
    assert "plays_other" in user and "recent_plays" in user and user[-1] == "date"
    item = [n for n, _ in DEFINITIONS.tile_columns(ITEM)]
    assert "recent_plays" not in item and "plays_music" not in item


@pytest.mark.parametrize(
    "broken",
    [
        lambda d: d.with_window(Window("3 h", 3)),  # not usable in a column name
        lambda d: d.with_aggregation(Aggregation("plays", "play")),  # duplicate name
        lambda d: type(d)(**{**d.__dict__, "ratios": (Ratio("x", "plays", "nope"),)}),
        lambda d: type(d)(**{**d.__dict__, "categories": ("music", "other")}),  # reserved
    ],
)
def test_invalid_definitions_are_rejected(broken):
    with pytest.raises(ValueError):
        broken(DEFINITIONS)
