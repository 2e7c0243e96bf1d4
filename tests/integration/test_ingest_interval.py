"""The interval ingest on real Spark + Delta: one pass over many arrival hours gives exactly
what ingesting them one at a time gives, in one bronze and one quarantine commit per chunk."""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import contextmanager

import pytest

from reclake.ingest import ingest_events, ingested_hours, load_ingest_log, run
from reclake.ingest.layout import drop_uri
from reclake.ingest.log import COUNT_FIELDS
from reclake.lakefs import local_path
from reclake.snapshots.deltars import open_table
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

pytestmark = pytest.mark.integration

START = parse_utc("2026-11-20T00:00Z")
END = START + 5 * HOUR
HOURS = list(hours_between(START, END))
QUIET = HOURS[2]  # its drop folder exists and holds no file
EDGE_FILE = "part-edge.jsonl"


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    """Five generated drops (late events, duplicates across hours, every fault kind at 10x),
    one emptied to a quiet hour, plus a hand-made file of edge copies in the last hour."""
    from reclake.config import Settings
    from reclake.generator import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("interval")
    settings = Settings(lake_root=(root / "lake").as_uri())
    config = GeneratorConfig(events_per_hour=300, n_users=50, n_items=40).with_fault_scale(10)
    generate(settings, START, END, config)
    quiet = local_path(drop_uri(settings, QUIET))
    for name in os.listdir(quiet):
        os.remove(os.path.join(quiet, name))
    first = {
        "event_id": "edge-1",
        "event_type": "like",
        "event_time": "2026-11-20T00:10:00Z",
        "user_id": 7,
        "item_id": 9,
        "request_id": "r1",
    }
    second = {**first, "event_id": "edge-2", "event_time": "2026-11-20T00:20:00Z"}
    _write_lines(settings, HOURS[0], [first, second])
    late = "2026-11-19T23:59:59Z"  # another event hour than hour 0's lines
    _write_lines(
        settings,
        HOURS[4],
        [
            first,  # a copy of hour 0's line: duplicate_in_bronze
            {**first, "event_time": late},  # edge-1 again in this drop: duplicate_in_drop
            {**second, "event_time": late},  # not a copy of hour 0's edge-2: written
            {**second, "event_time": late, "user_id": 8},  # duplicate_in_drop
            "{broken",
        ],
    )
    return settings.landing_uri


def _write_lines(settings, hour, records: list) -> None:
    folder = local_path(drop_uri(settings, hour))
    with open(f"{folder}/{EDGE_FILE}", "w") as out:
        out.writelines((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def lake(settings, tmp_path, landing, name: str):
    """Settings of a fresh lake of its own over the shared landing drops."""
    return dataclasses.replace(settings, lake_root=(tmp_path / name).as_uri(), landing_root=landing)


def content(spark, settings, name: str) -> list[tuple]:
    """Every row of a table, sorted."""
    df = spark.read.format("delta").load(table(name).uri(settings))
    return sorted(tuple(r) for r in df.collect())


def logged_counts(settings) -> dict[str, tuple]:
    """Each logged arrival hour's counts (versions and durations differ between runs)."""
    out = {}
    for hour in ingested_hours(settings):
        log = load_ingest_log(settings, hour)
        counts = tuple(getattr(log, k) for k in COUNT_FIELDS)
        out[log.arrival_hour] = (*counts, log.input_files, log.quarantine_reasons)
    return out


def data_commits(settings, name: str) -> list[str]:
    """The operations of the table's commits after its creation, oldest first."""
    history = open_table(table(name).uri(settings)).history()
    return [c["operation"] for c in sorted(history, key=lambda c: c["version"])][1:]


@contextmanager
def spark_jobs(spark, group: str):
    """The ids of the Spark jobs started inside the block (filled when it ends)."""
    ids: list[int] = []
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        yield ids
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            context.setLocalProperty(key, None)
        ids.extend(context.statusTracker().getJobIdsForGroup(group))


def same_tables(spark, a, b) -> None:
    for name in ("events", "quarantine_events"):
        assert content(spark, a, name) == content(spark, b, name), name
    assert logged_counts(a) == logged_counts(b)


def test_interval_equals_hour_by_hour_in_one_commit_per_table(
    spark, settings, tmp_path, landing, monkeypatch
):
    interval = lake(settings, tmp_path, landing, "interval")
    with spark_jobs(spark, "interval") as interval_jobs:
        report = ingest_events(spark, interval, START, END)

    hourly = lake(settings, tmp_path, landing, "hourly")
    # Hour by hour, and with every event hour read as dense: the broadcast lookup of sparse
    # hours and the plain read give the same copies.
    monkeypatch.setattr(run, "SPARSE_LINES", 0)
    with spark_jobs(spark, "hourly") as hourly_jobs:
        for hour in HOURS:
            ingest_events(spark, hourly, hour, hour + HOUR)

    same_tables(spark, interval, hourly)
    # One pass runs the Spark jobs of one hour, not five hours' worth.
    assert 0 < len(interval_jobs) < len(hourly_jobs) / 2
    totals = report.totals()
    assert (totals["hours"], totals["chunks"], totals["commits"]) == (5, 1, 2)
    assert data_commits(interval, "events") == ["WRITE"]
    assert data_commits(interval, "quarantine_events") == ["WRITE"]
    assert {h.bronze_version for h in report.hours} == {report.chunks[0].bronze_version}
    # The data holds what the comparison is about.
    assert totals["duplicates_in_drop"] and totals["duplicates_in_bronze"]
    assert totals["beyond_lateness"] and totals["quarantined_rows"]
    quiet = load_ingest_log(interval, QUIET)
    assert (quiet.input_files, quiet.input_lines, quiet.bronze_rows) == (0, 0, 0)
    for h in report.hours:
        assert h.input_lines == (
            h.bronze_rows + h.quarantined_rows + h.duplicates_in_drop + h.duplicates_in_bronze
        )
    assert len(content(spark, interval, "events")) == totals["bronze_rows"]


def test_copies_are_keyed_by_event_id_in_a_drop_and_by_event_hour_across(
    spark, settings, tmp_path, landing
):
    interval = lake(settings, tmp_path, landing, "interval")
    ingest_events(spark, interval, START, END)
    edge = {
        (r[0], r[2].isoformat(), r[3], r[9].hour)
        for r in content(spark, interval, "events")
        if r[0].startswith("edge-")
    }
    # Hour 4's edge-2 has another event hour than hour 0's, in another drop: not a copy, so
    # bronze holds edge-2 twice (docs/ingest.md, "Not caught"). Its own copy in the drop and
    # both edge-1 lines of hour 4 are duplicates.
    assert edge == {
        ("edge-1", "2026-11-20T00:10:00", 7, 0),
        ("edge-2", "2026-11-20T00:20:00", 7, 0),
        ("edge-2", "2026-11-19T23:59:59", 7, 4),
    }
    source = f"events/date=2026-11-20/hour=04/{EDGE_FILE}"
    quarantined = [(r[1], r[2], r[0]) for r in content(spark, interval, "quarantine_events")]
    assert (source, 5, "{broken") in quarantined


@pytest.mark.slow
def test_rerun_of_sub_and_super_intervals_changes_nothing(spark, settings, tmp_path, landing):
    interval = lake(settings, tmp_path, landing, "interval")
    ingest_events(spark, interval, START, END)
    once = {n: content(spark, interval, n) for n in ("events", "quarantine_events")}
    counts = logged_counts(interval)

    for start, end in ((HOURS[1], HOURS[3]), (HOURS[4], END), (HOURS[3], HOURS[4]), (START, END)):
        ingest_events(spark, interval, start, end)
        for name, rows in once.items():
            assert content(spark, interval, name) == rows, (iso(start), name)
        assert logged_counts(interval) == counts


@pytest.mark.slow
def test_chunks_commit_once_per_table_and_match_one_pass(spark, settings, tmp_path, landing):
    one = lake(settings, tmp_path, landing, "one")
    ingest_events(spark, one, START, END, chunk_hours=24)
    chunked = lake(settings, tmp_path, landing, "chunked")
    report = ingest_events(spark, chunked, START, END, chunk_hours=2)

    same_tables(spark, one, chunked)
    assert [(c.start, c.end) for c in report.chunks] == [
        (iso(HOURS[0]), iso(HOURS[2])),
        (iso(HOURS[2]), iso(HOURS[4])),
        (iso(HOURS[4]), iso(END)),
    ]
    assert data_commits(chunked, "events") == ["WRITE"] * 3
    assert data_commits(chunked, "quarantine_events") == ["WRITE"] * 3
    assert report.totals()["commits"] == 6


@pytest.mark.slow
def test_crash_between_the_commits_of_a_chunk_then_rerun(spark, settings, tmp_path, landing):
    clean = lake(settings, tmp_path, landing, "clean")
    ingest_events(spark, clean, START, END, chunk_hours=2)
    crashed = lake(settings, tmp_path, landing, "crashed")
    bronze_commits = []

    def crash_in_second_chunk(table_name: str) -> None:
        if table_name == "events":
            bronze_commits.append(table_name)
            if len(bronze_commits) == 2:
                raise RuntimeError("injected crash after the bronze commit")

    with pytest.raises(RuntimeError, match="injected crash"):
        ingest_events(spark, crashed, START, END, after_write=crash_in_second_chunk, chunk_hours=2)
    # The first chunk is done and logged; the second wrote bronze only, and no log.
    assert ingested_hours(crashed) == HOURS[:2]

    ingest_events(spark, crashed, START, END, chunk_hours=2)
    same_tables(spark, crashed, clean)
