"""Quiet hours are ordinary hours: an hour without impressions is labeled (a label-log record
with 0), sampled (0 rows, a sample-log record), validated as empty and final like any other,
so a range that holds one still builds, validates and publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclake.features.labels import label_impressions, logged_impressions
from reclake.features.samples import SAMPLE_LOG_DIR, build_training_samples, sampled_hours
from reclake.features.tiles import build_tiles
from reclake.hourlog import read_hour_docs
from reclake.quality.validate import validate_table
from reclake.timeutil import HOUR
from tests.integration.test_tiles import event, write_bronze, write_dims

pytestmark = pytest.mark.integration

H = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
def lake(spark, settings):
    """Impressions and plays in hour H; nothing at all in H + 1h; some plays in H + 2h; and
    bronze arrivals through H + 6h, so the labels of H .. H + 2h are final."""
    rows = [
        event("i1", "impression", H + timedelta(minutes=5), user_id=1, item_id=10),
        event("i2", "impression", H + timedelta(minutes=9), user_id=2, item_id=11),
        event("p1", "play", H + timedelta(minutes=6), user_id=1, item_id=10, watch_ms=900),
        event("p2", "play", H + 2 * HOUR + timedelta(minutes=1), user_id=1, item_id=11),
        event("late", "play", H + 3 * HOUR, user_id=3, item_id=11, arrival=H + 6 * HOUR),
    ]
    users = [(1, "US", "ios", "18-24", H - timedelta(days=9))]
    items = [(i, "music", 30_000, 1, H - timedelta(days=3)) for i in (10, 11)]
    write_dims(spark, settings, users, items)
    write_bronze(spark, settings, rows)
    build_tiles(spark, settings, H - timedelta(days=7), H + 7 * HOUR)
    return settings


def test_quiet_hour_is_labeled_sampled_and_validated_as_empty(spark, lake):
    report = label_impressions(spark, lake, H, H + 3 * HOUR)
    assert report.impressions == 2
    assert logged_impressions(lake, H + HOUR, H + 2 * HOUR) == 0  # quiet, but recorded
    assert logged_impressions(lake, H, H + 3 * HOUR) == 2

    # Not refused (it was: "no labeled impressions in silver"): zero rows, and recorded.
    result = build_training_samples(spark, lake, H, H + 3 * HOUR)
    assert result.rows == 2
    assert sampled_hours(lake, H, H + 3 * HOUR) == {H, H + HOUR, H + 2 * HOUR}
    docs = read_hour_docs(lake, SAMPLE_LOG_DIR, H, H + 3 * HOUR)
    assert [d["rows"] for d in docs] == [2, 0, 0]

    # The empty hour passes its gate: the volume checks know it is meant to be empty.
    quiet = validate_table(spark, lake, "training_samples", start=H + HOUR, end=H + 2 * HOUR)
    assert quiet.success, quiet.failures
    checks = {c["check"]: c for c in quiet.checks}
    assert checks["upstream_rows"]["success"] is True
    assert checks["freshness"]["success"] is None
    assert "quiet interval" in checks["freshness"]["note"]

    # The whole range reconciles with what the labels job recorded.
    whole = validate_table(spark, lake, "training_samples", start=H, end=H + 3 * HOUR)
    counted = {c["check"]: c for c in whole.checks}["upstream_rows"]
    assert (counted["success"], counted["observed"], counted["threshold"]) == (True, 2, 2)


@pytest.mark.slow
def test_rows_missing_against_the_label_log_fail_the_gate(spark, lake):
    label_impressions(spark, lake, H, H + HOUR)
    build_training_samples(spark, lake, H, H + HOUR)
    # The labels are re-run and now count one more impression than the samples hold.
    write_bronze(spark, lake, [event("i3", "impression", H + timedelta(minutes=20))])
    label_impressions(spark, lake, H, H + HOUR)
    stale = validate_table(spark, lake, "training_samples", start=H, end=H + HOUR)
    counted = {c["check"]: c for c in stale.checks}["upstream_rows"]
    assert stale.success is False
    assert (counted["observed"], counted["threshold"]) == (2, 3)
