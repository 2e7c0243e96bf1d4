"""Pure parts of the quality gate: suite derivation from declared schemas and the checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reclake.config import Settings
from reclake.quality import checks
from reclake.quality.report import expectation_failure
from reclake.quality.results import ValidationResult
from reclake.quality.suites import load_suite, merge_expectations, parse_ddl
from reclake.tables import TABLES, table

T0 = datetime(2026, 11, 20, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 20, 2, tzinfo=UTC)
TREND = {"min_ratio": 0.5, "max_ratio": 2.0, "history_runs": 3}


def run(rows: int, success: bool = True, hours: float | None = 2.0) -> ValidationResult:
    stats = {"row_count": rows, "interval_hours": hours}
    return ValidationResult("id", "events", 0, success, "2026", statistics=stats)


def test_parse_ddl_keeps_nested_types_and_not_null():
    cols = parse_ddl("a BIGINT NOT NULL, s ARRAY<STRUCT<t: TIMESTAMP, id: STRING>>, d DOUBLE")
    assert [(c.name, c.spark_type, c.not_null) for c in cols] == [
        ("a", "LongType", True),
        ("s", "ArrayType", False),
        ("d", "DoubleType", False),
    ]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_has_a_suite_with_its_key_unique(name):
    suite = load_suite(table(name), Settings().expectations_dir)
    kinds = {e["type"] for e in suite.expectations}
    assert kinds & {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
    assert set(suite.checks) == {"freshness", "row_count_trend", "distribution_drift"}


def test_sample_feature_ranges_follow_their_kind():
    suite = load_suite(table("training_samples"), Settings().expectations_dir)
    ranges: dict[str, list] = {}
    for r in suite.column_rules:
        if r["rule"] == "range":
            ranges.setdefault(r["column"], []).append((r["min"], r["max"], r.get("mostly", 1.0)))
    assert ranges["user_plays_24h"] == [(0, None, 1.0)]
    # A count/count rate: never negative; above 1 only for a few rows at window edges.
    assert ranges["item_like_rate_7d"] == [(0, None, 1.0), (None, 1, 0.95)]
    assert ranges["user_avg_watch_ms_24h"] == [(0, None, 1.0)]  # a mean, not a share
    assert ranges["user_last_played_len"] == [(0, 20, 1.0)]
    not_null = {r["column"] for r in suite.column_rules if r["rule"] == "not_null"}
    assert {"played", "user_plays_24h"} <= not_null
    assert "event_id" not in not_null  # the key is a GX expectation
    assert "item_like_rate_7d" not in not_null  # ratios may be null (zero denominator)


def test_reviewed_expectation_replaces_derived_one_of_same_type_and_column():
    derived = [{"type": "t", "kwargs": {"column": "a", "min_value": 0}}]
    reviewed = [{"type": "t", "kwargs": {"column": "a", "min_value": 5}}]
    assert merge_expectations(derived, reviewed) == reviewed


@pytest.mark.parametrize(
    ("rows", "ok"),
    [
        (20, True),  # same as the average
        (10, True),  # exactly 0.5x still passes
        (9, False),  # below 0.5x
        (41, False),  # above 2x
    ],
)
def test_row_count_trend_bounds(rows, ok):
    result = checks.row_count_trend(rows, 2.0, [run(10), run(30)], TREND)
    assert result.success is ok


def test_row_count_trend_ignores_failed_and_other_interval_runs():
    history = [run(1000, success=False), run(1000, hours=24.0), run(20)]
    assert checks.row_count_trend(20, 2.0, history, TREND).observed["trailing_average"] == 20
    assert checks.row_count_trend(20, 2.0, [run(20, hours=1.0)], TREND).success is None


def test_freshness_requires_newest_row_in_last_hour():
    conf = {"max_lag_minutes": 60}
    assert checks.freshness("2026-11-20T01:59:00+00:00", T0, T2, conf).success is True
    assert checks.freshness("2026-11-20T00:30:00+00:00", T0, T2, conf).success is False
    assert checks.freshness(None, T0, T2, conf).success is False
    assert checks.freshness(None, None, None, conf).success is None


def test_psi_is_zero_for_equal_and_large_for_disjoint_bins():
    assert checks.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert checks.psi([1.0, 0.0], [0.0, 1.0]) > 10


def test_label_rates_enforce_only_given_bounds():
    results = checks.label_rates(
        {"played": 0.001, "liked": 0.9},
        {"played": {"min": 0.01, "max": 0.99}, "liked": {"min": None, "max": None}},
    )
    assert [(r.column, r.success) for r in results] == [("played", False)]


def test_column_rules_report_violations_per_column():
    rules = [
        {"rule": "not_null", "column": "played"},
        {"rule": "range", "column": "rate", "min": 0, "max": 1},
        {"rule": "range", "column": "gone", "min": 0, "max": None},
    ]
    results = checks.column_rules(rules, [0, 3, None], 120)
    assert [(r.check, r.column, r.success) for r in results] == [
        ("column_not_null", "played", True),
        ("column_range", "rate", False),
        ("column_range", "gone", None),
    ]
    assert results[1].message == "column_range(rate): 3 of 120 rows outside [0, 1] (2.5%)"


@pytest.mark.parametrize(("bad", "ok"), [(6, True), (7, False)])
def test_a_tolerant_range_allows_its_share_of_rows(bad, ok):
    rule = {"rule": "range", "column": "rate", "min": None, "max": 1, "mostly": 0.95}
    (result,) = checks.column_rules([rule], [bad], 120)  # 5% of 120 rows = 6
    assert result.success is ok
    assert result.note.endswith("at most 5% allowed")


def test_expectation_failure_message_names_column_and_counts():
    gx_result = {
        "success": False,
        "expectation_config": {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "user_id", "batch_id": "b"},
        },
        "result": {"element_count": 120, "unexpected_count": 3, "unexpected_percent": 2.5},
        "exception_info": {"raised_exception": False},
    }
    failure = expectation_failure(gx_result)
    assert failure["column"] == "user_id"
    assert failure["message"] == (
        "expect_column_values_to_not_be_null(user_id): 3 of 120 rows null (2.5%)"
    )
