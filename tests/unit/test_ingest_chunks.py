"""Pure parts of the interval ingest: what a pass replaces, the sparse/dense split of event
hours, the per-hour counts built from one pass's collected groups, and the job's arguments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reclake.ingest.layout import (
    DuplicateGroup,
    LineGroup,
    block_offsets,
    hour_counts,
    replace_predicates,
    split_event_hours,
    valid_lines_by_event_hour,
)


def h(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=UTC)


def test_replace_predicates_cover_exactly_the_arrival_hours():
    bronze, quarantine = replace_predicates(h(22), datetime(2026, 11, 21, 2, tzinfo=UTC))
    hours = (
        "arrival_hour >= TIMESTAMP '2026-11-20 22:00:00'"
        " AND arrival_hour < TIMESTAMP '2026-11-21 02:00:00'"
    )
    assert bronze == hours
    assert quarantine == (
        f"arrival_date >= DATE '2026-11-20' AND arrival_date <= DATE '2026-11-21' AND {hours}"
    )


def test_split_event_hours_keeps_the_smallest_hours_sparse_up_to_the_limit():
    lines = {h(5): 900, h(4): 30, h(3): 20, h(0): 5}
    assert split_event_hours(lines, 60) == ([h(0), h(3), h(4)], [h(5)])
    assert split_event_hours(lines, 50) == ([h(0), h(3)], [h(4), h(5)])
    assert split_event_hours(lines, 0) == ([], [h(0), h(3), h(4), h(5)])
    assert split_event_hours({}, 10) == ([], [])


def group(file, start, hour, reason=None, event_hour=None, beyond=None, first=0, lines=1):
    return LineGroup(file, start, h(hour), reason, event_hour, beyond, first, lines)


EARLY = datetime(2026, 11, 19, 21, tzinfo=UTC)
GROUPS = [
    # hour 0: file a in two blocks, 4 valid lines (1 beyond lateness), 2 quarantined
    group("a", 0, 0, event_hour=h(0), beyond=False, first=10, lines=2),
    group("a", 0, 0, reason="wrong_type", first=11, lines=1),
    group("a", 99, 0, event_hour=h(0), beyond=False, first=3, lines=1),
    group("a", 99, 0, event_hour=EARLY, beyond=True, first=4, lines=1),
    group("a", 99, 0, reason="malformed_json", first=5, lines=1),
    # hour 1: file b, 3 valid lines
    group("b", 0, 1, event_hour=h(1), beyond=False, first=50, lines=3),
]
DUPLICATES = [
    DuplicateGroup(h(0), "duplicates_in_drop", True, 1),
    DuplicateGroup(h(1), "duplicates_in_bronze", False, 2),
]


def test_hour_counts_split_a_run_by_arrival_hour_and_add_up():
    counts = hour_counts([h(0), h(1), h(2)], GROUPS, DUPLICATES)
    assert counts[h(0)] == {
        "input_files": 1,
        "input_lines": 6,
        "bronze_rows": 3,
        "quarantined_rows": 2,
        "duplicates_in_drop": 1,
        "duplicates_in_bronze": 0,
        "beyond_lateness": 0,
        "quarantine_reasons": {"wrong_type": 1, "malformed_json": 1},
    }
    assert (counts[h(1)]["bronze_rows"], counts[h(1)]["duplicates_in_bronze"]) == (1, 2)
    # An hour without lines (an empty drop) is all zeros.
    assert counts[h(2)]["input_lines"] == counts[h(2)]["input_files"] == 0
    for c in counts.values():
        dropped = c["duplicates_in_drop"] + c["duplicates_in_bronze"]
        assert c["input_lines"] == c["bronze_rows"] + c["quarantined_rows"] + dropped


def test_block_offsets_and_event_hours_come_from_the_same_groups():
    # Block (a, 0) holds lines 1-3 from row id 10 on; block (a, 99) follows it in the file,
    # so its first row (id 3) is line 4: line number = row_id - offset + 1.
    assert block_offsets(GROUPS) == {("a", 0): 10, ("a", 99): 0, ("b", 0): 50}
    assert valid_lines_by_event_hour(GROUPS) == {h(0): 3, EARLY: 1, h(1): 3}


def test_ingest_job_takes_chunk_hours():
    from jobs.ingest_events import parse_args

    interval = ["--start", "2026-11-20T00:00Z", "--end", "2026-11-21T00:00Z"]
    assert parse_args(interval).chunk_hours is None  # the setting decides
    assert parse_args([*interval, "--chunk-hours", "6"]).chunk_hours == 6
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*interval, "--chunk-hours", "0"])
    assert exit_info.value.code == 2
