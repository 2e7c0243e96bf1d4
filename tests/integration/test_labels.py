"""label_impressions: window edges, label rules, late actions, finality, idempotency, delta-rs.

One hand-computed lake: impression hour 2026-11-20T23:00Z, attribution window 30 minutes,
allowed lateness 2 hours. The hour's labels wait for arrival hour 2026-11-21T02:00Z
(hour(00:00 + 30m) + 2h), and actions after midnight live in the next event_date partition.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclake import io, lakefs
from reclake.features.labels import LabelsNotFinal, bronze_slice, label_impressions
from reclake.tables import BRONZE_EVENTS_DDL, ITEMS_DDL, table
from reclake.timeutil import floor_hour

pytestmark = pytest.mark.integration

JOB = Path(__file__).resolve().parents[2] / "jobs" / "label_impressions.py"
T0 = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
START, END = T0, T0 + timedelta(hours=1)


def at(minutes: float, ms: int = 0) -> datetime:
    """T0 + minutes + milliseconds."""
    return T0 + timedelta(minutes=minutes, milliseconds=ms)


def ev(event_id, kind, time, request_id, item_id, watch_ms=None, arrival=None, user_id=1):
    """One bronze row; arrival defaults to the event's own hour (on time)."""
    event_hour = floor_hour(time)
    arrival_hour = arrival or event_hour
    late_hours = int((arrival_hour - event_hour) / timedelta(hours=1))
    return {
        "event_id": event_id,
        "event_type": kind,
        "event_time": time,
        "user_id": user_id,
        "item_id": item_id,
        "request_id": request_id,
        "position": 3 if kind == "impression" else None,
        "watch_ms": watch_ms,
        "event_hour": event_hour,
        "arrival_hour": arrival_hour,
        "late_hours": late_hours,
        "beyond_lateness": late_hours > 2,
        "source_file": "test",
        "event_date": time.date(),
    }


# Item 1 lasts 10 s, item 2 20 s, item 999 is not in dims/items.
EVENTS = [
    # A: action exactly at impression time counts; 1 ms before does not.
    ev("iA", "impression", at(10), "rA", 1),
    ev("aA_like", "like", at(10), "rA", 1),
    ev("aA_early", "share", at(10, -1), "rA", 1),
    # B: action exactly at impression time + 30 min counts (inclusive); 1 ms later does not.
    ev("iB", "impression", at(10), "rB", 1),
    ev("aB_share", "share", at(40), "rB", 1),
    ev("aB_skip", "skip", at(40, 1), "rB", 1),
    # C: a play in the next hour (and next day) is attributed; two likes make liked=true once.
    ev("iC", "impression", at(50), "rC", 2),
    ev("aC_play", "play", at(65), "rC", 2, watch_ms=1000),
    ev("aC_like1", "like", at(55), "rC", 2),
    ev("aC_like2", "like", at(56), "rC", 2),
    # D: watch_ms sums plays; the longest play is 89.9% of 10 s -> not finished.
    ev("iD", "impression", at(10), "rD", 1),
    ev("aD_play1", "play", at(15), "rD", 1, watch_ms=8990),
    ev("aD_play2", "play", at(20), "rD", 1, watch_ms=5000),
    # E: exactly 90% -> finished.
    ev("iE", "impression", at(10), "rE", 1),
    ev("aE_play", "play", at(12), "rE", 1, watch_ms=9000),
    # F: unknown item: labeled, finished=false, counted.
    ev("iF", "impression", at(10), "rF", 999),
    ev("aF_play", "play", at(11), "rF", 999, watch_ms=100000),
    # G: a play beyond allowed lateness (arrived 6 h after its hour) is excluded.
    ev("iG", "impression", at(10), "rG", 1),
    ev("aG_play", "play", at(15), "rG", 1, watch_ms=9500, arrival=T0 + timedelta(hours=6)),
    # H: an impression beyond allowed lateness is not labeled (stays flagged in bronze).
    ev("iH", "impression", at(20), "rH", 1, arrival=T0 + timedelta(hours=6)),
    # M: two impressions of one (request, item): each gets the actions of its own window.
    ev("iM1", "impression", at(20), "rM", 2),  # window [23:20, 23:50]
    ev("iM2", "impression", at(45), "rM", 2),  # window [23:45, 00:15]
    ev("aM_play", "play", at(30), "rM", 2, watch_ms=500),  # M1 only
    ev("aM_like", "like", at(50), "rM", 2),  # both (M1's upper edge)
    # Unmatched: no impression for request rX; rZ's impression is in the next hour.
    ev("aX_like", "like", at(30), "rX", 1),
    ev("iZ", "impression", at(70), "rZ", 1),
    ev("aZ_like", "like", at(75), "rZ", 1),
    # Not scanned (after 00:30): an impression that arrived at 02:00.
    ev("iLast", "impression", at(180), "rLast", 1),
]

# (event_id, played, watch_ms, finished, liked, shared, skipped)
EXPECTED = [
    ("iA", False, 0, False, True, False, False),
    ("iB", False, 0, False, False, True, False),
    ("iC", True, 1000, False, True, False, False),
    ("iD", True, 13990, False, False, False, False),
    ("iE", True, 9000, True, False, False, False),
    ("iF", True, 100000, False, False, False, False),
    ("iG", False, 0, False, False, False, False),
    ("iM1", True, 500, False, True, False, False),
    ("iM2", False, 0, False, True, False, False),
]


def _write_bronze(spark, settings, rows):
    schema = io.schema_from_ddl(spark, BRONZE_EVENTS_DDL)
    spec = table("events")
    io.ensure_table(spark, spec, BRONZE_EVENTS_DDL, settings)
    io.replace_where(spark.createDataFrame(rows, schema), spec, settings, "true")


def _write_items(spark, settings):
    created = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(1, "music", 10000, 7, created, "t"), (2, "comedy", 20000, 7, created, "t")]
    spec = table("items")
    io.ensure_table(spark, spec, ITEMS_DDL, settings)
    df = spark.createDataFrame(rows, io.schema_from_ddl(spark, ITEMS_DDL))
    io.replace_where(df, spec, settings, "true")


def _labeled(spark, settings):
    rows = io.read_table(spark, table("impressions_labeled"), settings).collect()
    return sorted(
        (r.event_id, r.played, r.watch_ms, r.finished, r.liked, r.shared, r.skipped) for r in rows
    )


@pytest.fixture
def lake(spark, settings):
    """Bronze and dims/items holding EVENTS and items 1, 2."""
    _write_bronze(spark, settings, EVENTS)
    _write_items(spark, settings)
    return settings


def test_labels_match_hand_computed_rows_and_report(spark, lake):
    report = label_impressions(spark, lake, START, END)

    assert _labeled(spark, lake) == EXPECTED
    assert report.impressions == report.rows_written == 9
    assert report.positives == {"played": 5, "finished": 1, "liked": 4, "shared": 1, "skipped": 0}
    assert report.unknown_items == 1
    # Scanned: 15 on-time actions in [23:00, 00:30]; unmatched: aA_early, aB_skip, aX, aZ.
    assert (report.actions_scanned, report.actions_matched, report.actions_unmatched) == (
        15,
        11,
        4,
    )
    assert (report.impressions_beyond_lateness, report.actions_beyond_lateness) == (1, 1)
    # No ingest log in this lake: bronze counts as complete through its latest arrival hour.
    assert report.final_through == "2026-11-21T05:00:00Z"

    # Row detail of one impression: keys, position and hour carried over unchanged.
    row = io.read_table(spark, table("impressions_labeled"), lake).where("event_id = 'iC'").first()
    assert (row.request_id, row.user_id, row.item_id, row.position) == ("rC", 1, 2, 3)
    assert row.event_hour.replace(tzinfo=UTC) == T0
    assert str(row.event_date) == "2026-11-20"


def test_rerun_is_idempotent_and_delta_rs_reads_the_same_rows(spark, lake):
    first = label_impressions(spark, lake, START, END)
    rows_first = _labeled(spark, lake)
    second = label_impressions(spark, lake, START, END)

    assert _labeled(spark, lake) == rows_first == EXPECTED
    assert second.version == first.version + 1
    assert second.rows_written == first.rows_written == 9

    from deltalake import DeltaTable

    rs = DeltaTable(lakefs.local_path(table("impressions_labeled").uri(lake))).to_pyarrow_table()
    cols = ["event_id", "played", "watch_ms", "finished", "liked", "shared", "skipped"]
    assert sorted(zip(*[rs[c].to_pylist() for c in cols], strict=True)) == EXPECTED


def test_relabel_picks_up_changed_bronze_and_keeps_other_hours(spark, lake):
    label_impressions(spark, lake, START, END)
    # The next hour, labeled separately, must survive a relabel of this hour.
    _write_bronze(spark, lake, [*EVENTS, ev("iLate", "impression", at(300), "rLate", 1)])
    label_impressions(spark, lake, END, END + timedelta(hours=1))
    assert [r[0] for r in _labeled(spark, lake)] == [e[0] for e in EXPECTED] + ["iZ"]

    # A like for iG appears in bronze (e.g. re-ingested): the relabel of 23:00 picks it up.
    _write_bronze(
        spark,
        lake,
        [
            *EVENTS,
            ev("iLate", "impression", at(300), "rLate", 1),
            ev("aG_like", "like", at(20), "rG", 1),
        ],
    )
    label_impressions(spark, lake, START, END)
    rows = dict((r[0], r[1:]) for r in _labeled(spark, lake))
    assert rows["iG"] == (False, 0, False, True, False, False)
    assert rows["iZ"] == (False, 0, False, True, False, False)  # aZ_like at 00:15, window of iZ
    assert len(rows) == 10


@pytest.mark.parametrize(
    ("start", "end", "latest_arrival", "hour", "waits_for"),
    [
        # One hour, bronze one arrival hour short of 02:00.
        (START, END, T0 + timedelta(hours=2), T0, T0 + timedelta(hours=3)),
        # Two hours with bronze through 02:00: 23:00 is final, 00:00 waits for 03:00.
        (START, END + timedelta(hours=1), T0 + timedelta(hours=3), END, T0 + timedelta(hours=4)),
    ],
)
def test_asked_too_early_raises_naming_the_hour(
    spark, settings, start, end, latest_arrival, hour, waits_for
):
    rows = [e for e in EVENTS if e["arrival_hour"] <= latest_arrival and e["event_id"] != "iLast"]
    rows.append(ev("heartbeat", "impression", latest_arrival, "rHB", 1))
    _write_bronze(spark, settings, rows)
    _write_items(spark, settings)

    with pytest.raises(LabelsNotFinal) as info:
        label_impressions(spark, settings, start, end)

    assert (info.value.hour, info.value.waits_for) == (hour, waits_for)
    assert info.value.final_through == latest_arrival
    assert f"impression hour {hour:%Y-%m-%dT%H:%M:%SZ}" in str(info.value)
    assert not io.is_delta_table(spark, table("impressions_labeled").uri(settings))


def test_job_exits_non_zero_when_not_final_and_prints_summary_when_final(
    spark, lake, monkeypatch, capsys
):
    spec = importlib.util.spec_from_file_location("label_job", JOB)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", lake.lake_root)
    monkeypatch.setenv("RECLAKE_SPARK_SHUFFLE_PARTITIONS", "2")

    # Bronze reaches arrival hour 05:00 (the late rows): hour 03:00 waits for 06:00.
    code = job.main(["--start", "2026-11-20T23:00Z", "--end", "2026-11-21T04:00Z"])
    err = capsys.readouterr().err
    assert code == job.EXIT_NOT_FINAL == 3
    assert "impression hour 2026-11-21T03:00:00Z are not final" in err
    assert "wait for arrival hour 2026-11-21T06:00:00Z" in err

    assert job.main(["--start", "2026-11-20T23:00Z", "--end", "2026-11-21T00:00Z"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and '"rows_written": 9' in out[0] and '"impressions": 9' in out[0]


def test_bronze_reads_are_pruned_by_event_date(spark, lake):
    plan = bronze_slice(spark, lake, START, END)._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [" in plan
    partition_filters = plan.split("PartitionFilters: [", 1)[1].split("]", 1)[0]
    assert "event_date" in partition_filters and "2026-11-20" in partition_filters


def test_ingest_log_is_authoritative_and_a_gap_blocks(spark, lake):
    from reclake.ingest.log import HourReport, save_ingest_log

    def log(hour: datetime) -> None:
        counts = dict.fromkeys(("input_files", "input_lines", "bronze_rows", "quarantined_rows"), 0)
        save_ingest_log(
            lake,
            HourReport(
                arrival_hour=hour.isoformat(),
                **counts,
                duplicates_in_drop=0,
                duplicates_in_bronze=0,
                beyond_lateness=0,
                bronze_version=0,
                quarantine_version=0,
                duration_s=0.0,
            ),
        )

    # Bronze reaches arrival hour 05:00, but the log has a gap at 02:00: not final.
    for h in (0, 1, 2, 4):
        log(T0 + timedelta(hours=h))
    with pytest.raises(LabelsNotFinal) as info:
        label_impressions(spark, lake, START, END)
    assert (info.value.waits_for, info.value.final_through) == (
        T0 + timedelta(hours=3),
        END + timedelta(hours=1),
    )

    log(T0 + timedelta(hours=3))
    report = label_impressions(spark, lake, START, END)
    assert report.final_through == "2026-11-21T03:00:00Z"
    assert _labeled(spark, lake) == EXPECTED


def test_label_log_records_every_hour_quiet_ones_too(spark, lake):
    from reclake.features.labels import LABEL_LOG_DIR, labeled_hours
    from reclake.hourlog import read_hour_docs

    hours = [START + timedelta(hours=n) for n in range(3)]
    assert labeled_hours(lake, START, hours[-1] + timedelta(hours=1)) == set()
    report = label_impressions(spark, lake, START, hours[-1] + timedelta(hours=1))
    assert labeled_hours(lake, START, hours[-1] + timedelta(hours=1)) == set(hours)
    docs = read_hour_docs(lake, LABEL_LOG_DIR, START, hours[-1] + timedelta(hours=1))
    per_hour = {d["impression_hour"]: d["impressions"] for d in docs}
    # 01:00 holds no impression: it is logged with 0, so it is final like the others.
    assert list(per_hour.values())[1:] == [1, 0]
    assert sum(per_hour.values()) == report.impressions == report.rows_written
    assert {d["version"] for d in docs} == {report.version}
