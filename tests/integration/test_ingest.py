"""ingest_events on real Spark + Delta: validation rules, dedupe, idempotency, counts."""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import UTC, date, datetime

import pytest

from reclake.contract import MAX_WATCH_MS
from reclake.ingest import (
    IngestError,
    ingest_events,
    ingested_hours,
    load_ingest_log,
)
from reclake.ingest.layout import drop_uri
from reclake.lakefs import local_path

pytestmark = pytest.mark.integration

H0 = datetime(2026, 11, 20, 0, tzinfo=UTC)
H1 = datetime(2026, 11, 20, 1, tzinfo=UTC)
H2 = datetime(2026, 11, 20, 2, tzinfo=UTC)


def ts(text: str) -> datetime:
    """A naive UTC datetime, as Spark collects TIMESTAMP values in a UTC session."""
    return datetime.fromisoformat(text)


def event(event_id: str, **overrides) -> dict:
    """A valid impression at 2026-11-20T00:10Z, with fields overridden or removed (None)."""
    record = {
        "event_id": event_id,
        "event_type": "impression",
        "event_time": "2026-11-20T00:10:00Z",
        "user_id": 7,
        "item_id": 9,
        "request_id": "r1",
        "position": 3,
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def line(record: dict | str) -> str:
    return record if isinstance(record, str) else json.dumps(record)


def write_drop(settings, hour: datetime, files: dict[str, list]) -> None:
    """Write a drop folder by hand: {file name: [record or raw line, ...]}."""
    folder = local_path(drop_uri(settings, hour))
    import os

    os.makedirs(folder, exist_ok=True)
    for name, records in files.items():
        data = "".join(line(r) + "\n" for r in records).encode()
        path = f"{folder}/{name}"
        with open(path, "wb") as out:
            out.write(gzip.compress(data) if name.endswith(".gz") else data)


def content(spark, settings, name: str) -> list[tuple]:
    """Every row of a table, sorted, as tuples."""
    uri = settings.table_uri({"events": "bronze/events", "quarantine": "quarantine/events"}[name])
    return sorted(tuple(r) for r in spark.read.format("delta").load(uri).collect())


# --- validation rules: one corpus, validated once, one case per fault kind -----------------

CASES = {
    # id: (line, expected reason or None when valid, expected detail or None)
    "valid_impression": (event("ok1"), None, None),
    "valid_2019_backfill": (event("ok2", event_time="2019-03-01T12:00:00Z"), None, None),
    "valid_offset_converted": (event("ok3", event_time="2026-11-20T02:30:00+02:00"), None, None),
    "valid_at_future_limit": (event("ok4", event_time="2026-11-20T01:10:00Z"), None, None),
    "malformed_json": ('{"event_id": "x1", "user_id": 7', "malformed_json", None),
    "empty_line": ("", "malformed_json", None),
    "trailing_text": (json.dumps(event("x2")) + " junk", "malformed_json", None),
    "two_objects_one_line": (
        json.dumps(event("x3")) + json.dumps(event("x4")),
        "malformed_json",
        None,
    ),
    "trailing_brace": (
        json.dumps(event("x8")) + "}",
        "malformed_json",
        "text after the JSON object",
    ),
    "trailing_text_then_brace": (
        json.dumps(event("x9")) + " x}",
        "malformed_json",
        "text after the JSON object",
    ),
    "closed_array_then_object": (
        json.dumps(event("x10")) + ",0]{}",
        "malformed_json",
        "text after the JSON object",
    ),
    "comma_between_objects": (
        json.dumps(event("x11")) + "," + json.dumps(event("x12")),
        "malformed_json",
        "text after the JSON object",
    ),
    "valid_braces_in_strings": (event("ok5", request_id='}{"x"}'), None, None),
    "valid_nested_extra_field": (
        {**event("ok6"), "ctx": {"a": {"b": [1, {"c": "}"}]}}},
        None,
        None,
    ),
    "valid_trailing_spaces": (json.dumps(event("ok7")) + "   ", None, None),
    "duplicate_key": ('{"event_id": "x5", "event_id": "x6"}', "malformed_json", None),
    "json_array": (json.dumps([event("x7")]), "not_object", None),
    "json_string": ('"hello"', "not_object", None),
    "missing_event_id": (event(None), "missing_field", "event_id"),
    "missing_event_type": (event("m2", event_type=None), "missing_field", "event_type"),
    "missing_event_time": (event("m3", event_time=None), "missing_field", "event_time"),
    "missing_user_id": (event("m4", user_id=None), "missing_field", "user_id"),
    "missing_item_id": (event("m5", item_id=None), "missing_field", "item_id"),
    "missing_request_id": (event("m6", request_id=None), "missing_field", "request_id"),
    "null_user_id": (
        '{"event_id":"m7","event_type":"like","event_time":"2026-11-20T00:10:00Z",'
        '"user_id":null,"item_id":9,"request_id":"r1"}',
        "missing_field",
        "user_id",
    ),
    "user_id_text": (
        event("t1", user_id="abc"),
        "wrong_type",
        "user_id: expected JSON integer, got STRING",
    ),
    "user_id_numeric_string": (
        event("t2", user_id="12"),
        "wrong_type",
        "user_id: expected JSON integer, got STRING",
    ),
    "item_id_fraction": (
        event("t3", item_id=1.5),
        "wrong_type",
        "item_id: expected JSON integer, got DECIMAL(2,1)",
    ),
    "event_id_number": (event(12), "wrong_type", "event_id: expected JSON string, got BIGINT"),
    "blank_request_id": (
        event("s1", request_id=" "),
        "out_of_range",
        "request_id: must be non-empty",
    ),
    "empty_event_id": (event(""), "out_of_range", "event_id: must be 1..128 characters"),
    "unknown_event_type": (
        event("u1", event_type="click"),
        "unknown_event_type",
        "event_type: click",
    ),
    "impression_without_position": (
        event("c1", position=None),
        "missing_field",
        "position (required for impression)",
    ),
    "play_without_watch_ms": (
        event("c2", event_type="play", position=None),
        "missing_field",
        "watch_ms (required for play)",
    ),
    "negative_watch_ms": (
        event("r1", event_type="play", watch_ms=-1),
        "out_of_range",
        f"watch_ms: must be 0..{MAX_WATCH_MS}",
    ),
    "watch_ms_above_max": (
        event("r2", event_type="play", watch_ms=MAX_WATCH_MS + 1),
        "out_of_range",
        f"watch_ms: must be 0..{MAX_WATCH_MS}",
    ),
    "position_above_max": (event("r3", position=1000), "out_of_range", "position: must be 0..999"),
    "user_id_zero": (event("r4", user_id=0), "out_of_range", "user_id: must be >= 1"),
    "event_id_too_long": (event("x" * 129), "out_of_range", "event_id: must be 1..128 characters"),
    "bad_timestamp": (event("b1", event_time="yesterday"), "bad_timestamp", None),
    "impossible_date": (event("b2", event_time="2026-13-01T00:00:00Z"), "bad_timestamp", None),
    # Decision: a time without a zone is rejected, not guessed to be UTC.
    "timestamp_without_zone": (
        event("b3", event_time="2026-11-20T00:10:00"),
        "bad_timestamp",
        None,
    ),
    "absurd_future": (event("f1", event_time="2030-01-01T00:00:00Z"), "future_timestamp", None),
    "just_past_future_limit": (
        event("f2", event_time="2026-11-20T01:10:01Z"),
        "future_timestamp",
        None,
    ),
    # Several faults: the first rule in order (missing before bad timestamp) wins.
    "first_rule_wins": (event("w1", user_id=None, event_time="soon"), "missing_field", "user_id"),
}


@pytest.fixture(scope="module")
def validated(spark):
    """Every corpus line through rules.validate once, by case id."""
    from reclake.ingest import rules

    ids = list(CASES)
    lines = spark.createDataFrame(
        [(line(CASES[i][0]), i, H0) for i in ids],
        "value STRING, case_id STRING, arrival_hour TIMESTAMP",
    )
    out = rules.validate(lines, max_future_skew_minutes=10).collect()
    return {r["case_id"]: r for r in out}


@pytest.mark.parametrize("case_id", list(CASES))
def test_validation_rule(validated, case_id):
    _, reason, detail = CASES[case_id]
    row = validated[case_id]
    assert row["reason"] == reason, row["detail"]
    if detail is not None:
        assert row["detail"] == detail


def test_valid_rows_are_typed_and_in_utc(validated):
    row = validated["valid_offset_converted"]
    assert row["event_time"] == ts("2026-11-20 00:30:00")
    assert (row["user_id"], row["item_id"], row["position"]) == (7, 9, 3)
    assert validated["valid_2019_backfill"]["event_time"] == ts("2019-03-01 12:00:00")


# --- end-to-end hours ------------------------------------------------------------------------

HOUR0_DROP = {
    "part-a.jsonl.gz": [
        event("e1"),  # line 1: impression in its own hour
        event("e2", event_type="play", position=None, watch_ms=1500),  # line 2
        "not json",  # line 3: malformed
        event("e1", user_id=8),  # line 4: a second copy of e1 in the same file: dropped
    ],
    "part-b.jsonl.gz": [
        event("e1"),  # line 1: third copy of e1: part-a's first copy wins
        event("e3", event_time="2026-11-19T22:59:59Z"),  # line 2: 2 hours late, not beyond
        event("e4", event_time="2026-11-19T21:00:00Z"),  # line 3: 3 hours late: beyond
        event("e5", user_id="12"),  # line 4: wrong type
    ],
}


def _bronze_row(event_id, event_type, event_time, user_id, position, watch_ms, late, file, hour=H0):
    t = ts(event_time)
    return (
        event_id,
        event_type,
        t,
        user_id,
        9,
        "r1",
        position,
        watch_ms,
        t.replace(minute=0, second=0),
        hour.replace(tzinfo=None),
        late,
        late > 2,
        f"events/date=2026-11-20/hour={hour.hour:02d}/{file}",
        t.date(),
    )


def test_end_to_end_hour(spark, settings):
    write_drop(settings, H0, HOUR0_DROP)
    report = ingest_events(spark, settings, H0, H1)

    assert content(spark, settings, "events") == sorted(
        [
            _bronze_row(
                "e1", "impression", "2026-11-20 00:10:00", 7, 3, None, 0, "part-a.jsonl.gz"
            ),
            _bronze_row("e2", "play", "2026-11-20 00:10:00", 7, None, 1500, 0, "part-a.jsonl.gz"),
            _bronze_row(
                "e3", "impression", "2026-11-19 22:59:59", 7, 3, None, 2, "part-b.jsonl.gz"
            ),
            _bronze_row(
                "e4", "impression", "2026-11-19 21:00:00", 7, 3, None, 3, "part-b.jsonl.gz"
            ),
        ]
    )
    prefix = "events/date=2026-11-20/hour=00/"
    quarantine = [(r[1], r[2], r[4], r[0]) for r in content(spark, settings, "quarantine")]
    assert quarantine == [
        (prefix + "part-a.jsonl.gz", 3, "malformed_json", "not json"),
        (prefix + "part-b.jsonl.gz", 4, "wrong_type", json.dumps(event("e5", user_id="12"))),
    ]
    (hour,) = report.hours
    # 8 lines = 4 bronze + 2 quarantined + 2 copies of e1 dropped.
    assert (hour.input_files, hour.input_lines, hour.bronze_rows, hour.quarantined_rows) == (
        2,
        8,
        4,
        2,
    )
    assert (hour.duplicates_in_drop, hour.duplicates_in_bronze, hour.beyond_lateness) == (2, 0, 1)
    assert hour.quarantine_reasons == {"malformed_json": 1, "wrong_type": 1}
    assert report.totals()["bronze_rows"] == 4
    assert ingested_hours(settings) == [H0]
    assert load_ingest_log(settings, H0) == hour


def test_rerun_gives_identical_content(spark, settings):
    write_drop(settings, H0, HOUR0_DROP)
    write_drop(settings, H1, {"part-a.jsonl.gz": [event("e9", event_time="2026-11-20T01:05:00Z")]})
    first = ingest_events(spark, settings, H0, H2)
    bronze, quarantine = content(spark, settings, "events"), content(spark, settings, "quarantine")
    second = ingest_events(spark, settings, H0, H2)

    assert content(spark, settings, "events") == bronze
    assert content(spark, settings, "quarantine") == quarantine
    assert len(bronze) == 5
    counts = [(h.bronze_rows, h.quarantined_rows, h.duplicates_dropped) for h in second.hours]
    assert counts == [
        (h.bronze_rows, h.quarantined_rows, h.duplicates_dropped) for h in first.hours
    ]
    # Each re-run commits new versions (it replaced, it did not skip).
    assert second.hours[0].bronze_version > first.hours[-1].bronze_version


@pytest.mark.slow
def test_crash_between_writes_then_rerun(spark, settings, tmp_path):
    landing = (tmp_path / "landing").as_uri()
    crashed = dataclasses.replace(settings, landing_root=landing)
    clean = dataclasses.replace(crashed, lake_root=(tmp_path / "clean_lake").as_uri())
    write_drop(crashed, H0, HOUR0_DROP)
    ingest_events(spark, crashed, H0, H1)  # a first successful run...

    def crash_after_bronze(table_name: str) -> None:
        if table_name == "events":
            raise RuntimeError("injected crash after the bronze commit")

    # ...then the drop is re-sent with one more event and the re-run dies half way.
    HOUR0_RESENT = {**HOUR0_DROP, "part-c.jsonl.gz": [event("e6"), "{bad"]}
    write_drop(crashed, H0, HOUR0_RESENT)
    with pytest.raises(RuntimeError, match="injected crash"):
        ingest_events(spark, crashed, H0, H1, after_write=crash_after_bronze)
    assert load_ingest_log(crashed, H0).input_lines == 8  # the log still shows the last success

    ingest_events(spark, crashed, H0, H1)
    ingest_events(spark, clean, H0, H1)
    for name in ("events", "quarantine"):
        assert content(spark, crashed, name) == content(spark, clean, name)
    assert load_ingest_log(crashed, H0).input_lines == 10


def test_duplicate_in_a_later_drop_keeps_the_bronze_copy(spark, settings):
    write_drop(settings, H0, {"part-a.jsonl.gz": [event("e1")]})
    # e1 is re-delivered an hour later, beside a new event.
    write_drop(settings, H1, {"part-a.jsonl.gz": [event("e1"), event("e7")]})
    report = ingest_events(spark, settings, H0, H2)

    assert [(h.bronze_rows, h.duplicates_in_bronze) for h in report.hours] == [(1, 0), (1, 1)]
    rows = {r[0]: r[9] for r in content(spark, settings, "events")}
    assert rows == {"e1": ts("2026-11-20 00:00:00"), "e7": ts("2026-11-20 01:00:00")}
    # Re-running either hour keeps that choice.
    ingest_events(spark, settings, H0, H1)
    ingest_events(spark, settings, H1, H2)
    assert {r[0]: r[9] for r in content(spark, settings, "events")} == rows


def test_missing_drop_fails_clearly_and_empty_drop_is_fine(spark, settings):
    with pytest.raises(IngestError, match=r"no drop for arrival hour 2026-11-20T00:00:00Z"):
        ingest_events(spark, settings, H0, H1)
    write_drop(settings, H0, {})
    (hour,) = ingest_events(spark, settings, H0, H1).hours
    assert (hour.input_files, hour.input_lines, hour.bronze_rows, hour.quarantined_rows) == (
        0,
        0,
        0,
        0,
    )


def test_unexpected_file_in_drop_is_an_error(spark, settings):
    write_drop(settings, H0, {"part-a.jsonl.gz": [event("e1")], "notes.txt": ["hello"]})
    with pytest.raises(IngestError, match=r"notes\.txt"):
        ingest_events(spark, settings, H0, H1)


def test_plain_jsonl_line_numbers_are_true(spark, settings):
    # Uncompressed files may be split across tasks; line numbers must stay per file.
    write_drop(settings, H0, {"part-a.jsonl": [event("e1"), "x", event("e2"), "y"]})
    ingest_events(spark, settings, H0, H1)
    assert [(r[2], r[0]) for r in content(spark, settings, "quarantine")] == [(2, "x"), (4, "y")]


def test_delta_rs_reads_what_spark_wrote(spark, settings):
    from deltalake import DeltaTable

    write_drop(settings, H0, HOUR0_DROP)
    ingest_events(spark, settings, H0, H1)
    for name, path in (("events", "bronze/events"), ("quarantine", "quarantine/events")):
        arrow = DeltaTable(settings.table_uri(path)).to_pyarrow_table().to_pylist()
        spark_rows = content(spark, settings, name)
        columns = spark.read.format("delta").load(settings.table_uri(path)).columns
        rs_rows = sorted(tuple(_naive(r[c]) for c in columns) for r in arrow)
        assert rs_rows == spark_rows
    assert date(2026, 11, 19) in {r[-1] for r in content(spark, settings, "events")}


def _naive(value):
    # delta-rs returns UTC-aware timestamps; Spark collects naive UTC ones.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def test_generated_interval_reconciles_with_the_generation_report(spark, settings):
    from reclake.generator import GeneratorConfig, generate

    config = GeneratorConfig(events_per_hour=400, n_users=50, n_items=40).with_fault_scale(10)
    generated = generate(settings, H0, H2, config)
    report = ingest_events(spark, settings, H0, H2)

    for made, got in zip(generated.hours, report.hours, strict=True):
        c = made.counts
        assert got.arrival_hour == made.arrival_hour
        assert got.input_lines == c.lines
        assert got.bronze_rows == c.valid_events
        assert got.duplicates_dropped == c.duplicate_lines
        assert got.quarantined_rows == c.malformed_lines + c.bad_field_lines
        assert got.beyond_lateness == c.too_late_events
        reasons = dict(got.quarantine_reasons)
        assert reasons.pop("malformed_json", 0) + reasons.pop("not_object", 0) == (
            c.malformed_lines
        )
        assert reasons == {k: n for k, n in c.bad_field_by_kind.items() if n}
