"""Bulk import on real Spark + Delta: files in any layout, JSON lines (gzipped or not) and
Parquet, placed by event hour and sent through the ingest's validation, dedupe and logs."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reclake.ingest import ingest_events, ingested_hours, load_ingest_log
from reclake.ingest.bulk import import_events
from reclake.ingest.layout import drop_uri
from reclake.ingest.log import COUNT_FIELDS
from reclake.lakefs import local_path
from reclake.tables import table
from reclake.timeutil import HOUR, hours_between, iso, parse_utc

pytestmark = pytest.mark.integration

START = parse_utc("2026-11-20T00:00Z")
HOURS = list(hours_between(START, START + 5 * HOUR))  # 02 and 03 hold no event
NOW = datetime(2026, 12, 1, tzinfo=UTC)
GZ, PLAIN, PARQUET = "2026/11/20/a.jsonl.gz", "more/deep/b.json", "p/c.parquet"


def event(event_id: str, event_type: str, time: str, **extra) -> dict:
    fields = {"position": 1} if event_type == "impression" else {}
    fields |= {"watch_ms": 1000} if event_type == "play" else {}
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_time": time,
        "user_id": 7,
        "item_id": 9,
        "request_id": "r1",
        **fields,
        **extra,
    }


def lines(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A nested folder: gzipped JSON lines, plain JSON lines and Parquet, with invalid lines,
    copies across files and events in hours 00, 01 and 04 of 2026-11-20."""
    root = tmp_path_factory.mktemp("history")
    for name in (GZ, PLAIN, PARQUET):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / GZ).write_bytes(
        gzip.compress(
            lines(
                event("e1", "impression", "2026-11-20T00:05:00Z"),
                event("e2", "play", "2026-11-20T00:10:00Z"),
                "{broken",
                event("e3", "like", "2026-11-20T01:30:00Z"),
                {
                    k: v
                    for k, v in event("e4", "impression", "2026-11-20T01:40:00Z").items()
                    if k != "position"
                },
            )
        )
    )
    (root / PLAIN).write_bytes(
        lines(
            event("e2", "play", "2026-11-20T00:10:00Z"),  # copy of the gzipped file's line 2
            event("e5", "skip", "2026-11-20T04:01:00Z"),
            event("e6", "like", "2026-11-20T01:15:00"),  # no zone
            event("e7", "share", "2099-01-01T00:00:00Z"),
            event("e8", "like", "2026-11-20T06:15:00+02:00"),  # 04:15 UTC
        )
    )
    utc = pa.timestamp("us", tz="UTC")
    rows = [
        ("e9", "impression", datetime(2026, 11, 20, 4, 20, tzinfo=UTC), 7, 3),
        ("e10", "like", datetime(2026, 11, 20, 0, 50, tzinfo=UTC), None, None),
        ("e5", "skip", datetime(2026, 11, 20, 4, 1, tzinfo=UTC), 7, None),  # copy of b.json
        ("e11", "impression", datetime(2026, 11, 20, 1, 5, tzinfo=UTC), 7, 1000),
    ]
    ids, types, times, users, positions = zip(*rows, strict=True)
    columns = {
        "event_id": pa.array(ids),
        "event_type": pa.array(types),
        "event_time": pa.array(times, utc),
        "user_id": pa.array(users, pa.int64()),
        "item_id": pa.array([9] * len(rows), pa.int64()),
        "request_id": pa.array(["r1"] * len(rows)),
        "position": pa.array(positions, pa.int32()),
    }
    pq.write_table(pa.table(columns), root / PARQUET)
    return root


def content(spark, settings, name: str) -> list[tuple]:
    df = spark.read.format("delta").load(table(name).uri(settings))
    return sorted(tuple(r) for r in df.collect())


def logged(settings) -> dict[str, tuple]:
    out = {}
    for hour in ingested_hours(settings):
        log = load_ingest_log(settings, hour)
        out[log.arrival_hour] = (tuple(getattr(log, k) for k in COUNT_FIELDS), log.source)
    return out


def bronze_view(spark, settings) -> set[tuple]:
    return {
        (
            r["event_id"],
            r["event_hour"].hour,
            r["arrival_hour"].hour,
            r["late_hours"],
            r["source_file"],
        )
        for r in spark.read.format("delta").load(table("events").uri(settings)).collect()
    }


def quarantine_view(spark, settings) -> set[tuple]:
    rows = spark.read.format("delta").load(table("quarantine_events").uri(settings)).collect()
    return {(r["source_file"], r["line_number"], r["arrival_hour"].hour, r["reason"]) for r in rows}


def test_import_places_by_event_hour_and_reimport_changes_nothing(spark, settings, history):
    report = import_events(spark, settings, str(history), chunk_hours=2, now=NOW)

    assert bronze_view(spark, settings) == {
        ("e1", 0, 0, 0, GZ),
        ("e2", 0, 0, 0, GZ),  # the first copy in (source_file, line) order
        ("e3", 1, 1, 0, GZ),
        ("e5", 4, 4, 0, PLAIN),
        ("e8", 4, 4, 0, PLAIN),
        ("e9", 4, 4, 0, PARQUET),
    }
    # True line numbers (Parquet: row numbers); lines without a usable event time, and the
    # future one, go to the import's first hour.
    assert quarantine_view(spark, settings) == {
        (GZ, 3, 0, "malformed_json"),
        (GZ, 5, 1, "missing_field"),
        (PLAIN, 3, 0, "bad_timestamp"),
        (PLAIN, 4, 0, "future_timestamp"),
        (PARQUET, 2, 0, "missing_field"),
        (PARQUET, 4, 1, "out_of_range"),
    }
    source = f"import:{history}"
    zero = (0, 0, 0, 0, 0, 0)
    # (input, bronze, quarantined, dup in drop, dup in bronze, beyond lateness), per hour.
    assert logged(settings) == {
        iso(HOURS[0]): ((7, 2, 4, 1, 0, 0), source),
        iso(HOURS[1]): ((3, 1, 2, 0, 0, 0), source),
        iso(HOURS[2]): (zero, source),
        iso(HOURS[3]): (zero, source),
        iso(HOURS[4]): ((4, 3, 0, 1, 0, 0), source),
    }
    totals = report.totals()
    assert (totals["start"], totals["end"], totals["hours"]) == (
        iso(START),
        iso(HOURS[4] + HOUR),
        5,
    )
    assert (totals["input_lines"], totals["bronze_rows"], totals["quarantined_rows"]) == (14, 6, 6)
    # Three chunks; Delta skips a replace with nothing to add or remove: the middle chunk
    # makes no commit, the last (no quarantined line) a bronze commit only.
    assert (totals["chunks"], totals["commits"]) == (3, 3)

    tables = {n: content(spark, settings, n) for n in ("events", "quarantine_events")}
    counts = logged(settings)
    import_events(spark, settings, str(history), chunk_hours=2, now=NOW)
    assert {n: content(spark, settings, n) for n in tables} == tables
    assert logged(settings) == counts


def test_a_landing_ingest_of_an_imported_hour_replaces_it(spark, settings, history):
    import_events(spark, settings, str(history), now=NOW)
    folder = local_path(drop_uri(settings, HOURS[4]))
    os.makedirs(folder)
    with open(f"{folder}/part-0.jsonl", "wb") as out:
        out.write(lines(event("e5", "skip", "2026-11-20T04:01:00Z")))
    ingest_events(spark, settings, HOURS[4], HOURS[4] + HOUR)

    hour_4 = {r for r in bronze_view(spark, settings) if r[2] == 4}
    assert hour_4 == {("e5", 4, 4, 0, "events/date=2026-11-20/hour=04/part-0.jsonl")}
    assert logged(settings)[iso(HOURS[4])] == ((1, 1, 0, 0, 0, 0), "landing")
    assert logged(settings)[iso(HOURS[0])][1] == f"import:{history}"


def test_cli_imports_a_single_file_and_prints_one_json_line(
    spark, settings, tmp_path, monkeypatch, capsys
):
    from reclake.cli import main as cli

    path = tmp_path / "one.jsonl"
    path.write_bytes(lines(event("x1", "like", "2026-11-21T10:00:00Z"), "[1]"))
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)

    assert cli(["import", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert {
        k: summary[k]
        for k in (
            "hours",
            "input_lines",
            "bronze_rows",
            "quarantined_rows",
            "chunks",
            "commits",
            "path",
        )
    } == {
        "hours": 1,
        "input_lines": 2,
        "bronze_rows": 1,
        "quarantined_rows": 1,
        "chunks": 1,
        "commits": 2,
        "path": str(path),
    }
    assert quarantine_view(spark, settings) == {("one.jsonl", 2, 10, "not_object")}


def test_unsupported_files_are_a_one_line_error_and_nothing_is_written(
    spark, settings, tmp_path, monkeypatch, capsys
):
    from reclake.cli import main as cli

    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.jsonl").write_bytes(lines(event("x1", "like", "2026-11-21T10:00:00Z")))
    (tmp_path / "in" / "notes.txt").write_text("hello")
    (tmp_path / "in" / "sub" / "_SUCCESS").write_text("")
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)

    assert cli(["import", str(tmp_path / "in")]) == 1
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert len(error) == 1 and "unsupported files under" in error[0]
    assert "notes.txt, sub/_SUCCESS" in error[0]
    assert captured.out == "" and ingested_hours(settings) == []
