"""The reclake view's pure parts: bins and counts of feature profiles, the SVG charts and the
HTML pages, from hand-made inputs with exact expected output."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from reclake.snapshots.profile import FeatureProfile, bin_counts, fractions, shared_edges
from reclake.ui import html, pages, svg


@pytest.mark.parametrize(
    ("lo", "hi", "bins", "integer", "edges"),
    [
        # a small integer range: one bin per value, centred on it
        (0, 3, 20, True, [-0.5, 0.5, 1.5, 2.5, 3.5]),
        # a wide integer range: equal-width bins like floats
        (0, 40, 4, True, [0, 10, 20, 30, 40]),
        (0.0, 1.0, 4, False, [0.0, 0.25, 0.5, 0.75, 1.0]),
        # one value: one unit-wide bin around it
        (2.5, 2.5, 4, False, [2.0, 3.0]),
        # no values at all
        (None, None, 4, False, []),
    ],
)
def test_shared_edges(lo, hi, bins, integer, edges):
    assert shared_edges(lo, hi, bins, integer) == edges


def test_bin_counts_skip_nulls_and_nan_and_keep_the_top_edge():
    values = pa.array([0.0, 0.24, 0.25, 0.99, 1.0, None, float("nan")])
    assert bin_counts(values, [0.0, 0.25, 0.5, 0.75, 1.0]) == [2, 1, 0, 2]
    assert bin_counts(pa.array([1, 1, 3], pa.int64()), [0.5, 1.5, 2.5, 3.5]) == [2, 0, 1]
    assert bin_counts(pa.array([1.0]), []) == []


def test_feature_profile_rates_and_psi():
    f = FeatureProfile(
        column="x",
        edges=[0, 1, 2],
        counts=[3, 1],
        stats={"mean": 0.5, "min": 0, "max": 1, "null_count": 1},
        rows=5,
        baseline_counts=[1, 3],
        baseline_stats={"mean": 1.5, "min": 0, "max": 1, "null_count": 0},
        baseline_rows=4,
    )
    assert (f.null_rate, f.baseline_null_rate) == (0.2, 0.0)
    # (0.75 - 0.25) ln 3 + (0.25 - 0.75) ln(1/3) = ln 3
    assert f.psi == pytest.approx(1.0986, abs=1e-4)
    assert fractions([3, 1]) == [0.75, 0.25] and fractions([0, 0]) == [0.0, 0.0]
    alone = FeatureProfile("x", [0, 1], [2], {"null_count": 0}, 2)
    assert alone.psi is None and alone.baseline_null_rate is None


def heights(markup: str, cls: str) -> list[float]:
    return [float(h) for h in re.findall(rf"class='{cls}'[^>]*height='([\d.]+)'", markup)]


def test_histogram_pair_draws_shares_side_by_side_with_exact_tooltips():
    chart = svg.histogram_pair([0, 1, 2], [3, 1], [1, 3], label="plays", height=120)
    assert chart.startswith("<svg") and chart.count("<rect") == 4
    # the tallest share (75 %) fills the plot (120 - 14 axis - 4 pad); 25 % is a third of it
    assert heights(chart, "bar current") == [102.0, 34.0]
    assert heights(chart, "bar baseline") == [34.0, 102.0]
    assert "<title>plays [0, 1): 75.0% (3)</title>" in chart
    assert "<title>plays [1, 2): baseline 75.0% (3)</title>" in chart
    assert "no values" in svg.histogram_pair([], [], None, label="empty")


def test_rate_pair_and_series_plot():
    chart = svg.rate_pair(0.25, None, label="ratio", width=162)
    assert re.findall(r"class='bar current'[^>]*width='([\d.]+)'", chart) == [
        "29.0"
    ]  # (162 - 46) * 25 %
    assert "baseline" not in chart and "<title>ratio: current 25.00%</title>" in chart

    plot = svg.series_plot(["h0", "h1", "h2"], {"a": [1, 2, 4], "b": [0, 0, 1000]}, label="t")
    assert plot.count("<circle") == 6 and plot.count("<polyline") == 2
    assert "<title>b h2: 1,000</title>" in plot
    assert "no data" in svg.series_plot([], {}, label="t")


def test_table_escapes_text_and_keeps_raw_cells():
    markup = html.table(
        [{"a": "<script>", "b": "<b>x</b>", "n": 1234}], ("a", "b", "n"), raw=("b",)
    )
    assert "&lt;script&gt;" in markup and "<script>" not in markup
    assert "<td><b>x</b></td>" in markup and "<td class='num'>1,234</td>" in markup
    assert html.esc(None) == "-" and html.esc(0.123456) == "0.1235" and html.esc(True) == "yes"


def test_tables_page_shows_health_freshness_and_quarantine():
    health = [
        {
            "table": "events",
            "exists": True,
            "latest_version": 7,
            "rows": 1500,
            "files": 3,
            "total_bytes": 9000,
            "small_file_ratio": 0.5,
            "last_optimize": None,
            "last_vacuum": None,
            "live_snapshots": 0,
        },
        {"table": "users", "exists": False},
    ]
    fresh = {"ingested": "2026-11-20T05:00:00Z", "labeled": None, "sampled": None}
    markup = pages.tables_page(
        health, fresh, {"quarantine_events": {"bad_json": 4}}, base="/reclake"
    )
    assert "<td class='num'>1,500</td>" in markup and "<td>50.0%</td>" in markup
    assert "Not written yet: users" in markup
    assert "<td>2026-11-20T05:00:00Z</td>" in markup
    assert "<td>bad_json</td><td class='num'>4</td>" in markup
    assert "class='active' href='/reclake/tables'" in markup


def test_rollback_page_posts_the_confirmed_target_and_the_latest_it_showed():
    now = {"id": "s-2", "version": 5, "row_count": 20}
    target = {"id": "s-1", "version": 3, "row_count": 10}
    markup = pages.rollback_page("training_samples", now, target, base="/reclake")
    assert "action='/reclake/snapshots/training_samples/rollback'" in markup
    for field, value in (("to", "s-1"), ("expected_latest", "s-2"), ("confirm", "yes")):
        assert f"name='{field}' value='{value}'" in markup


def test_ingest_page_plots_each_count_and_totals_them():
    logs = [
        {
            "arrival_hour": f"2026-11-20T0{h}:00:00Z",
            "input_lines": 10 * h,
            "bronze_rows": 8 * h,
            "quarantined_rows": h,
            "duplicates_dropped": h,
            "source": "landing",
        }
        for h in (1, 2)
    ]
    markup = pages.ingest_page(logs, 7, base="/reclake")
    assert markup.count("<polyline") == 4 and markup.count("<circle") == 8
    assert "<td>total</td><td class='num'>30</td><td class='num'>24</td>" in markup
