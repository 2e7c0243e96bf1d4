"""How the DAGs are wired: dependencies, rendered spark-submit arguments, the label shift,
pools and connections, schedules, the failure summary, and the JSON-result gate."""

from __future__ import annotations

import copy
import os
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest

from reclake import lakefs
from reclake import orchestration as orch
from reclake.config import PROJECT_ROOT as REPO
from reclake.config import Settings

D = pendulum.datetime(2026, 11, 20, tz="UTC")


def upstreams(dag) -> dict[str, set[str]]:
    return {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}


def render(task, dag, start, end, xcom=None, params=None):
    """Render a task's template fields with a real Jinja env and a constructed context."""
    from airflow.sdk.execution_time.context import MacrosAccessor

    xcom = xcom or {}
    ti = SimpleNamespace(xcom_pull=lambda task_ids=None, key="return_value", **_: xcom[task_ids])
    context = {
        "data_interval_start": start,
        "data_interval_end": end,
        "logical_date": start,
        "macros": MacrosAccessor(),
        "ti": ti,
        "task_instance": ti,
        "params": {"start": None, "end": None, **(params or {})},
    }
    task = copy.deepcopy(task)  # rendering mutates; keep the session DagBag pristine
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    return task


def test_hourly_dependencies(dags):
    assert upstreams(dags["reclake_hourly"]) == {
        "wait_for_landing_drop": set(),
        "ingest_events": {"wait_for_landing_drop"},
        "load_dims": set(),
        "build_tiles": {"ingest_events"},
        "labeled_hour_in_lake": {"ingest_events"},
        "label_impressions": {"labeled_hour_in_lake"},
        "build_training_samples": {"load_dims", "build_tiles", "label_impressions"},
        "validate_training_samples": {"build_training_samples"},
    }


@pytest.mark.parametrize(
    ("arrival_hour", "expected"),
    [
        (D, False),  # labels 21:00 the day before: the lake starts at D 00:00
        (D.add(hours=2), False),  # labels 23:00 the day before
        (D.add(hours=3), True),  # labels D 00:00, the lake's first hour
        (D.add(hours=9), True),
    ],
)
def test_labeling_waits_for_hours_inside_the_lake(arrival_hour, expected):
    ingested = [D.add(hours=h) for h in range(10)]
    assert orch.labeled_hour_in_lake(arrival_hour, 3, ingested) is expected
    assert orch.labeled_hour_in_lake(arrival_hour, 3, []) is False


def test_training_snapshot_dependencies(dags):
    assert upstreams(dags["reclake_training_snapshot"]) == {
        "snapshot_interval": set(),
        "wait_for_samples": {"snapshot_interval"},
        "pin_version": {"wait_for_samples"},
        # the gate and the audit check the pinned version side by side; publish needs both
        "validate_training_samples": {"pin_version"},
        "audit_training_samples": {"pin_version"},
        "publish_snapshot": {"validate_training_samples", "audit_training_samples"},
        "announce_snapshot": {"publish_snapshot", "validate_training_samples"},
    }


def test_snapshot_dag_audits_the_pinned_version_beside_the_gate_and_fails_like_it(
    dags, tmp_path, monkeypatch
):
    from airflow.sdk.exceptions import AirflowFailException

    dag = dags["reclake_training_snapshot"]
    audit = dag.get_task("audit_training_samples")
    # Plain Python, outside the one-slot spark pool, so it runs while the gate runs.
    assert audit.pool != "spark"
    # A stand-in jobs/audit.py: prints the arguments it got, exits with $CODE (1: mismatches).
    (tmp_path / "audit.py").write_text(
        "import json, os, sys\n"
        "code = int(os.environ['CODE'])\n"
        "print(json.dumps({'id': 'aud-1', 'args': sys.argv[1:], 'success': code == 0}))\n"
        "sys.exit(code)\n"
    )
    monkeypatch.setattr(orch, "JOBS_DIR", tmp_path)
    day = {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
    ti = SimpleNamespace(xcom_pull=lambda task_ids=None, **_: {"snapshot_interval": day}[task_ids])
    monkeypatch.setenv("CODE", "0")
    result = audit.python_callable({"version": 7}, ti=ti)
    assert result["args"] == [
        *["--table", "training_samples", "--version", "7"],
        *["--start", "2026-11-20T00:00:00+00:00", "--end", "2026-11-21T00:00:00+00:00"],
    ]
    monkeypatch.setenv("CODE", "1")  # mismatches fail for good: no retry
    with pytest.raises(AirflowFailException, match="refused"):
        audit.python_callable({"version": 7}, ti=ti)


def test_the_pinned_version_is_the_tables_newest(dags, tmp_path, monkeypatch):
    from reclake.reader import synthetic

    settings = Settings(lake_root=tmp_path.as_uri())
    uri = synthetic.table_uri(settings)
    for _ in range(3):
        newest = synthetic.write_samples(uri, synthetic.sample_batch(10), mode="append")
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    pin = dags["reclake_training_snapshot"].get_task("pin_version")
    assert pin.python_callable() == {"version": newest} and newest == 2


def test_maintenance_and_consumer_dependencies(dags):
    assert upstreams(dags["reclake_maintenance"]) == {
        "optimize": set(),
        "daily_vacuum_due": {"optimize"},
        "vacuum": {"daily_vacuum_due"},
        "skip_vacuum": {"daily_vacuum_due"},
    }
    assert upstreams(dags["reclake_train_consumer"]) == {
        "snapshot_from_event": set(),
        "train_ctr": {"snapshot_from_event"},
    }


# (allowed lateness h, attribution window min) -> hours between arrival hour and labeled hour
@pytest.mark.parametrize(
    ("lateness", "window", "lag"),
    [
        (2, 30, 3),  # defaults: actions up to H+1:30 have event hour H+1, final at arrival H+3
        (2, 59, 3),  # the window still ends inside hour H+1
        (2, 60, 4),  # the window end (H+2:00 exactly) counts, so hour H+2 is needed
        (0, 0, 1),  # no window, no lateness: an action at H+1:00 exactly still counts
        (1, 90, 3),  # window reaches H+2:30, one hour late -> arrival hour H+3
    ],
)
def test_label_lag_hours(lateness, window, lag):
    settings = Settings(allowed_lateness_hours=lateness, attribution_window_minutes=window)
    assert orch.label_lag_hours(settings) == lag


@pytest.mark.parametrize(("lateness", "window"), [(2, 30), (2, 60), (0, 0), (5, 150), (3, 1)])
def test_label_lag_matches_the_labels_job(lateness, window):
    """The DAG's shift and the labels job's finality check must agree (else exit 2 forever)."""
    from reclake.features.labels import required_arrival_hour

    settings = Settings(allowed_lateness_hours=lateness, attribution_window_minutes=window)
    hour = D.add(hours=5)
    assert required_arrival_hour(hour, settings) == hour.add(hours=orch.label_lag_hours(settings))


def test_hourly_spark_args_render_for_a_data_interval(dags):
    dag = dags["reclake_hourly"]
    start, end = D.add(hours=10), D.add(hours=11)
    h = {hour: f"2026-11-20T{hour:02d}:00:00+00:00" for hour in range(24)}
    labeled = ["--start", h[7], "--end", h[8]]
    expected = {
        # the arrival hour itself
        "ingest_events": ["--start", h[10], "--end", h[11]],
        "load_dims": [],
        # tiles fold in the arrival hour's rows (the job finds the event hours they touch)
        "build_tiles": ["--start", h[10], "--end", h[11]],
        # the hour whose attribution window + lateness closed: 3 hours back
        "label_impressions": labeled,
        "build_training_samples": labeled,
        "validate_training_samples": ["--table", "training_samples", *labeled],
    }
    for task_id, args in expected.items():
        task = render(dag.get_task(task_id), dag, start, end)
        assert task.application_args == args, task_id


@pytest.mark.parametrize(
    ("task_id", "job"),
    [
        ("ingest_events", "ingest_events.py"),
        ("load_dims", "load_dims.py"),
        ("build_tiles", "build_tiles.py"),
        ("label_impressions", "label_impressions.py"),
        ("build_training_samples", "build_training_samples.py"),
        ("validate_training_samples", "validate.py"),
    ],
)
def test_hourly_spark_tasks_use_conn_pool_jars_conf_env(dags, task_id, job):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    task = dags["reclake_hourly"].get_task(task_id)
    assert isinstance(task, SparkSubmitOperator)
    assert task.application == str(REPO / "jobs" / job)
    assert task._conn_id == "spark_default"
    assert task.pool == "spark"
    jars = task.jars.split(",")
    assert jars == sorted(str(p) for p in (REPO / "jars").glob("*.jar"))
    assert any("delta-spark" in Path(j).name for j in jars)
    assert task.conf["spark.sql.session.timeZone"] == "UTC"
    assert task.conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert task.conf["spark.driver.host"] == "127.0.0.1"
    assert task.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert task.env_vars["RECLAKE_DAG_TEST_PASSTHROUGH"] == "passed-through"


def test_validate_returns_a_result_the_gate_can_read(dags):
    assert isinstance(
        dags["reclake_hourly"].get_task("validate_training_samples"),
        orch.JsonResultSparkSubmitOperator,
    )
    validate = dags["reclake_training_snapshot"].get_task("validate_training_samples")
    assert isinstance(validate, orch.JsonResultSparkSubmitOperator)


def test_snapshot_dag_renders_the_day_and_the_validation_id(dags):
    dag = dags["reclake_training_snapshot"]
    interval = dag.get_task("snapshot_interval").python_callable
    day = interval(params={}, data_interval_start=D, data_interval_end=D.add(days=1))
    assert day == {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
    xcom = {"snapshot_interval": day, "pin_version": {"version": 7}}
    validate = render(dag.get_task("validate_training_samples"), dag, D, D.add(days=1), xcom)
    assert validate.application_args == [
        "--table",
        "training_samples",
        "--version",
        "7",
        "--start",
        day["start"],
        "--end",
        day["end"],
    ]
    assert validate.pool == "spark"
    # publish gets exactly the validated result's id and the same day
    assert orch.publish_args(
        {"id": "val-20261120", "table": "training_samples", "success": True},
        *orch.interval_of(day),
    ) == [
        "--table",
        "training_samples",
        "--validation-id",
        "val-20261120",
        *["--start", "2026-11-20T00:00:00+00:00", "--end", "2026-11-21T00:00:00+00:00"],
    ]


def test_snapshot_dag_waits_for_what_reclake_recorded_as_sampled(dags, tmp_path):
    from reclake.features.labels import LABEL_LOG_DIR
    from reclake.features.samples import SAMPLE_LOG_DIR
    from reclake.hourlog import write_hour_doc
    from reclake.ingest.log import log_uri
    from reclake.maintenance.health import freshness
    from reclake.progress import describe_pending, pending_samples

    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    sensor = dags["reclake_training_snapshot"].get_task("wait_for_samples")
    assert sensor.mode == "reschedule"
    start, end = D, D.add(hours=4)
    # 00:00 and 02:00 were sampled (by any run; 02:00 held no impression); 01:00 is labeled;
    # 03:00 is not: its labels wait for arrival hour 06:00 (lag 3), and ingest reached 05:00.
    for hour, rows in ((D, 5), (D.add(hours=2), 0)):
        write_hour_doc(settings, SAMPLE_LOG_DIR, hour, {"rows": rows})
    write_hour_doc(settings, LABEL_LOG_DIR, D.add(hours=1), {"impressions": 4})
    for h in range(6):
        lakefs.write_json(log_uri(settings, D.add(hours=h)), {})
    pending = pending_samples(settings, start, end)
    assert [(p.hour, p.step) for p in pending] == [
        (D.add(hours=1), "samples"),
        (D.add(hours=3), "ingest"),
    ]
    assert pending[1].arrival == D.add(hours=6)
    text = describe_pending(pending)
    assert text.startswith("2 hour(s) not built yet; 1 hour(s) wait for build_training_samples")
    assert "(arrival hour 2026-11-20T06:00:00Z not ingested yet)" in text
    assert freshness(settings) == {
        "ingested": "2026-11-20T05:00:00Z",
        "labeled": "2026-11-20T01:00:00Z",
        "sampled": "2026-11-20T02:00:00Z",
    }
    write_hour_doc(settings, SAMPLE_LOG_DIR, D.add(hours=1), {"rows": 3})
    write_hour_doc(settings, SAMPLE_LOG_DIR, D.add(hours=3), {"rows": 0})
    assert pending_samples(settings, start, end) == []


def test_snapshot_wait_deadline_is_minutes_for_a_manual_run_and_the_day_for_a_scheduled_one():
    poke = D.add(days=1, hours=2)
    assert orch.samples_deadline(poke, D.add(days=1), "manual", 3) == poke.add(minutes=10)
    assert orch.samples_deadline(poke, D.add(days=1), "manual", 3, 45) == poke.add(minutes=45)
    # scheduled: the day's end + lag 3 h + the hourly's 6 h landing wait + 1 h
    assert orch.samples_deadline(poke, D.add(days=1), "scheduled", 3) == D.add(days=1, hours=10)
    late = D.add(days=3)
    assert orch.samples_deadline(late, D.add(days=1), "scheduled", 3) == late.add(minutes=10)


def test_snapshot_dag_can_be_triggered_for_a_range_of_hours(dags):
    interval = dags["reclake_training_snapshot"].get_task("snapshot_interval").python_callable
    params = {"start": "2026-11-20T00:00Z", "end": "2026-11-20T02:00Z"}
    got = interval(params=params, data_interval_start=D, data_interval_end=D.add(days=1))
    assert got == {"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T02:00:00Z"}
    assert orch.run_interval(params, D, D.add(days=1)) == (D, D.add(hours=2))
    assert orch.run_interval({"start": None, "end": None}, D, D.add(days=1)) == (D, D.add(days=1))
    # A manual run without a logical date (the trigger form's default) has no data interval:
    # it covers the whole UTC day before its trigger time.
    triggered = D.add(days=1, hours=6, minutes=20)
    assert orch.run_interval({}, None, None, triggered) == (D, D.add(days=1))
    with pytest.raises(ValueError, match="go together"):
        orch.run_interval({"start": "2026-11-20T00:00Z"}, D, D.add(days=1))


def test_backfill_dependencies(dags):
    dag = dags["reclake_backfill"]
    assert upstreams(dag) == {
        "plan": set(),
        "want_ingest": {"plan"},
        "ingest_events": {"want_ingest"},
        "want_dims": {"plan"},
        "load_dims": {"want_dims"},
        "want_tiles": {"plan", "ingest_events"},
        "build_tiles": {"want_tiles"},
        "want_labels": {"plan", "build_tiles"},
        "label_impressions": {"want_labels"},
        "want_samples": {"plan", "label_impressions", "load_dims"},
        "build_training_samples": {"want_samples"},
        "want_publish": {"plan", "build_training_samples"},
        "pin_version": {"want_publish"},
        "validate_training_samples": {"pin_version"},
        "audit_training_samples": {"pin_version"},
        "publish_snapshot": {"validate_training_samples", "audit_training_samples"},
        "announce_snapshot": {"publish_snapshot", "validate_training_samples"},
    }
    # A gate runs whether the stage before it ran or was skipped; a stage runs only when its
    # gate passed (so a stage left out is skipped and the later ones still run).
    for step, task_id in orch.BACKFILL_STAGES.items():
        assert dag.get_task(f"want_{step}").trigger_rule == "none_failed"
        assert dag.get_task(task_id).trigger_rule == "all_success"
    assert dag.get_task("validate_training_samples").trigger_rule == "all_success"


def test_backfill_gates_skip_what_the_plan_leaves_out(dags):
    from airflow.sdk.exceptions import AirflowSkipException

    dag = dags["reclake_backfill"]
    plan = orch.backfill_plan(
        {"start": "2026-11-20T00:00Z", "end": "2026-11-21T00:00Z", "stages": ["samples"]}, 3
    )
    dag.get_task("want_samples").python_callable(plan)  # asked for: passes
    for step in ("ingest", "dims", "tiles", "labels", "publish"):
        with pytest.raises(AirflowSkipException, match=f"{step} was not asked for"):
            dag.get_task(f"want_{step}").python_callable(plan)
    assert orch.backfill_wants({**plan, "publish": True}, "publish")


def test_backfill_plan_ranges_and_stage_choice(dags):
    dag = dags["reclake_backfill"]
    params = {"start": "2026-11-20T00:00Z", "end": "2026-11-30T00:00Z", "chunk_hours": 48}
    plan = orch.backfill_plan(params, lag_hours=3)
    assert (plan["arrival_start"], plan["arrival_end"]) == (
        "2026-11-20T00:00:00Z",
        "2026-11-30T00:00:00Z",
    )
    # Impressions of the last 3 arrival hours are not final yet: the hourly DAG labels them.
    assert (plan["start"], plan["end"]) == ("2026-11-20T00:00:00Z", "2026-11-29T21:00:00Z")
    assert plan["stages"] == list(orch.BACKFILL_STAGES)
    published = orch.backfill_plan({**params, "stages": ["samples", "tiles"], "publish": True}, 3)
    assert (published["stages"], published["publish"]) == (["tiles", "samples"], True)
    rendered = render(
        dag.get_task("build_training_samples"), dag, D, D, xcom={"plan": plan}
    ).application_args
    assert rendered == [
        "--start",
        plan["start"],
        "--end",
        plan["end"],
        "--chunk-hours",
        "48",
    ]
    ingest = render(dag.get_task("ingest_events"), dag, D, D, xcom={"plan": plan})
    assert ingest.application_args[:4] == [
        "--start",
        plan["arrival_start"],
        "--end",
        plan["arrival_end"],
    ]
    for bad, message in (
        ({**params, "end": params["start"]}, "must be after start"),
        ({**params, "end": "2026-11-20T02:00Z"}, "too short to label"),
        ({**params, "stages": ["ingest", "gold"]}, "unknown stages"),
        ({**params, "start": "2026-11-20T00:30Z"}, "whole hours"),
    ):
        with pytest.raises(ValueError, match=message):
            orch.backfill_plan(bad, 3)
    # Ingest-only backfills may be as short as one hour.
    assert orch.backfill_plan({**params, "end": "2026-11-20T01:00Z", "stages": ["ingest"]}, 3)


def test_snapshot_dag_announces_the_asset_the_consumer_waits_for(dags):
    announce = dags["reclake_training_snapshot"].get_task("announce_snapshot")
    assert [o.uri for o in announce.outlets] == [orch.TRAINING_SAMPLES_ASSET_URI]
    consumer = dags["reclake_train_consumer"]
    schedule_assets = [a.uri for a in consumer.timetable.asset_condition.objects]
    assert schedule_assets == [orch.TRAINING_SAMPLES_ASSET_URI]
    assert consumer.get_task("train_ctr").pool == "training"


def test_snapshot_event_extra():
    extra = orch.snapshot_event_extra(
        {"id": "snap-1", "version": 7, "row_count": 1234},
        {"id": "val-1", "table": "training_samples", "success": True},
        D,
        D.add(days=1),
    )
    assert extra == {
        "snapshot_id": "snap-1",
        "version": 7,
        "row_count": 1234,
        "table": "training_samples",
        "validation_id": "val-1",
        "start": "2026-11-20T00:00:00+00:00",
        "end": "2026-11-21T00:00:00+00:00",
    }


def test_consumer_picks_the_newest_snapshot_event():
    from airflow.sdk import Asset

    def event(ts, snap):
        return SimpleNamespace(timestamp=ts, extra={"snapshot_id": snap})

    events = {
        Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI): [
            event(D.add(hours=1), "snap-old"),
            event(D.add(hours=5), "snap-new"),
        ],
        Asset(name="other", uri="reclake://gold/other"): [event(D.add(hours=9), "not-this")],
    }
    assert orch.snapshot_from_events(events)["snapshot_id"] == "snap-new"
    with pytest.raises(ValueError, match="no reclake://gold/training_samples"):
        orch.snapshot_from_events({})
    bad = {Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI): [event(D, "")]}
    with pytest.raises(ValueError, match="no snapshot_id"):
        orch.snapshot_from_events(bad)


@pytest.mark.parametrize(
    ("end_hour", "due"),
    [(0, True), (1, False), (13, False), (23, False)],
)
def test_vacuum_runs_once_a_day(end_hour, due):
    assert orch.vacuum_due(D.add(hours=end_hour)) is due


def _latest_complete_start(period: timedelta) -> pendulum.DateTime:
    """Start of the latest interval of `period` (1 h or 1 day, UTC) that has ended by now."""
    now = pendulum.now("UTC")
    floor = now.start_of("hour" if period == timedelta(hours=1) else "day")
    return floor - period


def _next_start(dag, last: tuple | None) -> pendulum.DateTime:
    """Start of the interval the (serialized, as the scheduler sees it) DAG runs next."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(*last) if last else None,
        restriction=TimeRestriction(dag.start_date, None, True),
    )
    return info.data_interval.start


def test_schedules_have_real_data_intervals(dags):
    """Airflow 3's cron presets have zero-length intervals; ours must span the period."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    for dag_id, period in [
        ("reclake_hourly", timedelta(hours=1)),
        ("reclake_maintenance", timedelta(hours=1)),
        ("reclake_training_snapshot", timedelta(days=1)),
    ]:
        dag = DagSerialization.from_dict(DagSerialization.to_dict(dags[dag_id]))
        info = dag.timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(dag.start_date, None, True),
        )
        assert info.data_interval.end - info.data_interval.start == period, dag_id
        assert info.run_after == info.data_interval.end, dag_id


@pytest.mark.parametrize(
    ("dag_id", "period", "bound"),
    [
        ("reclake_hourly", timedelta(hours=1), timedelta(hours=24)),
        ("reclake_training_snapshot", timedelta(days=1), timedelta(days=3)),
    ],
)
def test_unpausing_never_queues_weeks_of_runs(dags, dag_id, period, bound):
    """First run: the latest complete interval, not start_date; a missed stretch is caught up
    for at most the bound; a short gap is caught up whole."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagSerialization.from_dict(DagSerialization.to_dict(dags[dag_id]))
    assert dag.timetable.summary.endswith("catch-up <= " + ("24 h" if bound.days < 2 else "3 days"))
    latest = _latest_complete_start(period)
    assert _next_start(dag, None) == latest
    month_ago = latest - timedelta(days=30)
    assert _next_start(dag, (month_ago, month_ago + period)) == latest - bound
    recent = latest - 2 * period
    assert _next_start(dag, (recent, recent + period)) == recent + period


def test_landing_drop_uri_follows_the_contract(tmp_path):
    settings = Settings(lake_root=tmp_path.as_uri())
    uri = orch.landing_drop_uri(settings, pendulum.datetime(2026, 11, 20, 7, tz="UTC"))
    assert uri == f"{tmp_path.as_uri()}/landing/events/date=2026-11-20/hour=07"


def test_failure_summary_names_dag_task_interval_try_exception_and_log():
    ti = SimpleNamespace(
        dag_id="reclake_hourly",
        task_id="ingest_events",
        map_index=-1,
        try_number=2,
        log_url="http://localhost:8080/dags/reclake_hourly/runs/r1/tasks/ingest_events",
    )
    context = {
        "ti": ti,
        "run_id": "scheduled__2026-11-20T10:00:00+00:00",
        "data_interval_start": D.add(hours=10),
        "data_interval_end": D.add(hours=11),
        "exception": RuntimeError("spark-submit exited 1"),
    }
    assert orch.failure_summary(context) == (
        "reclake task failed: dag=reclake_hourly task=ingest_events "
        "run_id=scheduled__2026-11-20T10:00:00+00:00 "
        "interval=[2026-11-20 10:00:00+00:00, 2026-11-20 11:00:00+00:00) try=2 "
        "exception=RuntimeError: spark-submit exited 1 "
        "log=http://localhost:8080/dags/reclake_hourly/runs/r1/tasks/ingest_events"
    )


@pytest.mark.parametrize(
    ("lines", "result"),
    [
        (["log", '{"id": "v1", "success": true}', "Shutdown hook"], {"id": "v1", "success": True}),
        (['{"id": "a"}', "x", '{"id": "b"}'], {"id": "b"}),  # the last JSON object wins
        (["no json here", "[1, 2]", "{not json}"], None),
    ],
)  # fmt: skip
def test_last_json_line(lines, result):
    assert orch.last_json_line(lines) == result


JOB = textwrap.dedent(
    """
    import json, sys
    success = sys.argv[1] == "pass"
    print("some spark log line")
    print(json.dumps({"id": "val-42", "table": "training_samples", "success": success}))
    sys.exit(0 if success else 1)
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("verdict", ["pass", "fail"])
def test_json_result_operator_returns_the_result_or_fails_the_gate(tmp_path, monkeypatch, verdict):
    """A real spark-submit (local[1]) of a stand-in job that prints a final JSON line."""
    from airflow.sdk.exceptions import AirflowFailException

    app = tmp_path / "job.py"
    app.write_text(JOB)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[1]"}')
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    op = orch.JsonResultSparkSubmitOperator(
        task_id="validate", application=str(app), application_args=[verdict]
    )
    if verdict == "pass":
        assert op.execute({}) == {"id": "val-42", "table": "training_samples", "success": True}
    else:
        with pytest.raises(AirflowFailException, match="failed its gate"):
            op.execute({})


@pytest.mark.parametrize(
    ("code", "line", "outcome"),
    [
        (0, '{"id": "snap-1", "version": 3, "row_count": 10}', "result"),
        (1, '{"error": "validation failed"}', "refused"),  # the gate said no: no retries
        (3, "", "error"),  # anything else may be transient: an ordinary, retried failure
        (0, "", "error"),  # a job that says nothing cannot hand anything on
    ],
)
def test_run_job(tmp_path, monkeypatch, code, line, outcome):
    """run_job runs a real Python job file and turns its exit code and JSON into an outcome."""
    from airflow.sdk.exceptions import AirflowFailException

    (tmp_path / "job.py").write_text(
        f"import sys\nprint('working', sys.argv[1:])\nprint({line!r})\nsys.exit({code})\n"
    )
    monkeypatch.setattr(orch, "JOBS_DIR", tmp_path)
    if outcome == "result":
        assert orch.run_job("job.py", ["--x", "1"], fail_fast_codes=(1,)) == {
            "id": "snap-1",
            "version": 3,
            "row_count": 10,
        }
    elif outcome == "refused":
        with pytest.raises(AirflowFailException, match="refused"):
            orch.run_job("job.py", [], fail_fast_codes=(1,))
    else:
        with pytest.raises(RuntimeError):
            orch.run_job("job.py", [], fail_fast_codes=(1,))
