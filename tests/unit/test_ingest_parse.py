"""Pure parts of the ingest: drop layout, line numbering, count reconciliation, the log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reclake.config import Settings
from reclake.ingest.layout import (
    IngestError,
    check_drop_files,
    drop_relative,
    line_offsets,
    reconcile,
)
from reclake.ingest.log import (
    HourReport,
    IngestReport,
    ingested_hours,
    load_ingest_log,
    log_uri,
    save_ingest_log,
)


def test_drop_relative_is_the_landing_layout():
    hour = datetime(2026, 11, 20, 3, tzinfo=UTC)
    assert drop_relative(hour) == "events/date=2026-11-20/hour=03"


def test_check_drop_files_refuses_foreign_files():
    assert check_drop_files("d", ["b.jsonl", "a.jsonl.gz"]) == ["a.jsonl.gz", "b.jsonl"]
    with pytest.raises(IngestError, match=r"part-1\.csv"):
        check_drop_files("d", ["a.jsonl.gz", "part-1.csv"])


def test_line_offsets_number_lines_per_file_across_blocks():
    # File a was split in two blocks read by different tasks (row ids 100.. and 7..);
    # file b is one block starting at row id 50.
    blocks = [("a", 4096, 100, 3), ("a", 0, 7, 5), ("b", 0, 50, 2)]
    offsets = line_offsets(blocks)
    # Line number = row_id - offset + 1.
    assert 7 - offsets[("a", 0)] + 1 == 1
    assert 100 - offsets[("a", 4096)] + 1 == 6  # first line of the second block
    assert 51 - offsets[("b", 0)] + 1 == 2
    assert offsets == {("a", 0): 7, ("a", 4096): 95, ("b", 0): 50}


def _counts(**overrides):
    base = {
        "input_lines": 10,
        "bronze_rows": 6,
        "quarantined_rows": 2,
        "duplicates_in_drop": 1,
        "duplicates_in_bronze": 1,
        "new_rows": 6,
        "invalid_rows": 2,
    }
    return {**base, **overrides}


def test_reconcile_accepts_counts_that_add_up():
    assert reconcile(_counts()) == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"input_lines": 11}, "input_lines 11 != bronze + quarantine + duplicates 10"),
        ({"new_rows": 5}, "bronze_rows 6 != new_rows 5"),
        ({"invalid_rows": 3}, "quarantined_rows 2 != invalid_rows 3"),
    ],
)
def test_reconcile_reports_each_mismatch(overrides, fragment):
    assert reconcile(_counts(**overrides)) == [fragment]


def _report(hour: str, lines: int) -> HourReport:
    return HourReport(hour, 1, lines, lines, 0, 0, 0, 0, 3, 4, 0.5, {})


def test_ingest_log_round_trip_and_listing(tmp_path):
    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    assert ingested_hours(settings) == []
    save_ingest_log(settings, _report("2026-11-20T05:00:00Z", 3))
    save_ingest_log(settings, _report("2026-11-20T01:00:00Z", 4))
    save_ingest_log(settings, _report("2026-11-20T05:00:00Z", 9))  # a re-run overwrites
    assert ingested_hours(settings) == [
        datetime(2026, 11, 20, 1, tzinfo=UTC),
        datetime(2026, 11, 20, 5, tzinfo=UTC),
    ]
    assert load_ingest_log(settings, "2026-11-20T05:00Z").input_lines == 9
    assert log_uri(settings, "2026-11-20T05:00Z").endswith("_reclake/ingest_log/2026-11-20T05.json")
    with pytest.raises(KeyError, match="2026-11-20T02:00:00Z"):
        load_ingest_log(settings, "2026-11-20T02:00Z")


def test_report_totals_sum_the_hours():
    report = IngestReport("a", "b", [_report("h1", 3), _report("h2", 4)])
    totals = report.totals()
    assert (totals["hours"], totals["input_lines"], totals["bronze_rows"]) == (2, 7, 7)
