"""The reclake view's pages over a small JVM-free lake: synthetic training samples written
with delta-rs and published as two real snapshots (reclake.reader.synthetic)."""

from __future__ import annotations

import re

import pytest

from reclake.reader import synthetic as syn
from reclake.snapshots import latest_id
from reclake.snapshots.profile import feature_columns, profile
from reclake.ui import views

BASE = "/reclake"


@pytest.fixture
def lake(settings):
    """Two published snapshots: 300 rows, then 200 more (500)."""
    uri = syn.table_uri(settings)
    first = syn.publish_version(settings, syn.write_samples(uri, syn.sample_batch(300, seed=1)))
    batch = syn.sample_batch(200, offset=300, seed=2)
    second = syn.publish_version(settings, syn.write_samples(uri, batch))
    return settings, first, second


def test_snapshot_pages_show_the_registry_figures(lake):
    settings, first, second = lake
    run = {"dag_id": "reclake_training_snapshot", "run_id": "manual__1"}
    listing = views.snapshots(settings, base=BASE, runs={second.id: run})
    assert f"href='{BASE}/snapshots/{first.id}'" in listing
    assert "<td class='num'>300</td>" in listing and "<td class='num'>500</td>" in listing
    assert f"training_samples@latest = <a href='{BASE}/snapshots/{second.id}'" in listing
    assert "href='/dags/reclake_training_snapshot/runs/manual__1' target='_top'" in listing

    page = views.snapshot(settings, second.id, base=BASE, runs={})
    assert "<td>rows</td><td class='num'>500</td>" in page
    assert f"diff?a={first.id}&amp;b={second.id}" in page
    assert "<td>latest</td><td>yes</td>" in page and "not recorded" in page

    diff = views.diff(settings, first.id, second.id, base=BASE)
    assert "rows +200;" in diff


def test_features_page_plots_every_feature_beside_the_previous_snapshot(lake):
    settings, first, second = lake
    drift = profile(settings, "training_samples@latest")
    assert drift["baseline"]["id"] == first.id and drift["snapshot"]["rows"] == 500
    names = feature_columns(second)
    assert [f.column for f in drift["features"]] == names and len(names) > 10
    assert all(sum(f.counts) + f.stats["null_count"] == 500 for f in drift["features"])
    assert all(
        sum(f.baseline_counts) + f.baseline_stats["null_count"] == 300 for f in drift["features"]
    )

    page = views.features(settings, None, base=BASE)
    # one histogram and one null-rate chart per feature
    assert page.count("<svg") == 2 * len(names)
    assert len(re.findall(r"class='bar baseline'", page)) > len(names)


def test_rollback_confirm_then_move_and_a_stale_confirmation_is_refused(lake):
    settings, first, second = lake
    confirm = views.rollback_confirm(settings, "training_samples", None, base=BASE)
    assert f"name='to' value='{first.id}'" in confirm
    assert f"name='expected_latest' value='{second.id}'" in confirm
    with pytest.raises(views.StaleConfirmation):
        views.rollback(settings, "training_samples", first.id, "someone-else", base=BASE)
    assert latest_id(settings, "training_samples") == second.id
    done = views.rollback(settings, "training_samples", first.id, second.id, base=BASE)
    assert first.id in done and latest_id(settings, "training_samples") == first.id


def test_tables_and_ingest_pages_of_a_lake_without_ingest_logs(lake):
    settings = lake[0]
    tables = views.tables(settings, base=BASE)
    assert re.search(
        r"<td>training_samples</td><td class='num'>1</td><td class='num'>500</td>", tables
    )
    assert "<td>ingested</td><td>-</td>" in tables
    ingest = views.ingest(settings, 7, base=BASE)
    assert "0 arrival hours" in ingest and "no data" in ingest
