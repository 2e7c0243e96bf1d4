"""
### reclake_training_snapshot

One run per UTC day `[D, D+1)`, after the day is over. Write-audit-publish of
`gold/training_samples`:

1. `wait_for_hourly_samples`: the samples are built hour by hour by `reclake_hourly`; this
   waits until the 24 hourly runs that labeled and sampled hours D 00:00 .. 23:00 succeeded
   (logical dates D + lag .. D + 23h + lag, lag = label lag of reclake_hourly).
2. `validate_training_samples`: the Great Expectations gate over the whole day. A failed gate
   fails the task at once (no retries), so publish never runs and the previous snapshot stays
   current.
3. `audit_training_samples`: the point-in-time audit of exactly the validated version:
   a seeded, stratified sample of its rows recomputed from bronze and the dimensions must
   match exactly (`jobs/audit.py`, docs/quality.md). A mismatch fails the task at once, like
   the gate.
4. `publish_snapshot`: publishes exactly the validated and audited version (ids from the two
   gates' XComs) as an immutable snapshot; `python jobs/publish_snapshot.py`, no JVM. It
   refuses a version without a passed audit.
5. `announce_snapshot`: emits an event on the Asset `reclake://gold/training_samples` whose
   extra carries snapshot_id, version, row_count, validation_id and the interval;
   `reclake_train_consumer` is scheduled on it.

Trigger with config `{"start": "2026-11-20T00:00Z", "end": "2026-11-20T06:00Z"}` to publish a
snapshot of any range of whole hours instead of the run's day (`make demo` does this).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Asset, CronDataIntervalTimetable, Metadata, Param, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings

SETTINGS = load_settings()
TRAINING_SAMPLES = Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI)
DAY = ["--start", orch.RUN_START, "--end", orch.RUN_END]
# The audit checks the very version (and interval) the gate validated.
VALIDATION_ID = "{{ ti.xcom_pull(task_ids='validate_training_samples')['id'] }}"
HOUR_PARAM = {"type": ["null", "string"]}


@dag(
    dag_id="reclake_training_snapshot",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=orch.START_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=orch.default_args(),
    tags=["reclake", "daily", "snapshot"],
    params={
        "start": Param(
            None, description="first hour to publish (default: the run's day)", **HOUR_PARAM
        ),
        "end": Param(None, description="end hour, exclusive", **HOUR_PARAM),
    },
    doc_md=__doc__,
)
def reclake_training_snapshot():
    wait = ExternalTaskSensor(
        task_id="wait_for_hourly_samples",
        external_dag_id="reclake_hourly",
        external_task_id="validate_training_samples",
        execution_date_fn=functools.partial(
            orch.hourly_logical_dates, lag_hours=orch.label_lag_hours(SETTINGS)
        ),
        mode="reschedule",
        poke_interval=600,
        timeout=int(timedelta(days=1).total_seconds()),
    )
    validate = orch.spark_job(
        "validate_training_samples",
        "validate.py",
        ["--table", "training_samples", *DAY],
        SETTINGS,
        capture_result=True,
    )

    audit = orch.spark_job(
        "audit_training_samples",
        "audit.py",
        ["--table", "training_samples", "--validation-id", VALIDATION_ID],
        SETTINGS,
        capture_result=True,
    )

    @task(execution_timeout=timedelta(minutes=30))
    def publish_snapshot(
        validation: dict[str, Any],
        audited: dict[str, Any],
        params=None,
        data_interval_start=None,
        data_interval_end=None,
    ) -> dict[str, Any]:
        """Publish the validated, audited version (plain Python: the registry needs no JVM)."""
        start, end = orch.run_interval(params, data_interval_start, data_interval_end)
        args = [*orch.publish_args(validation, start, end), "--audit-id", str(audited["id"])]
        # Exit 1 is the gate refusing (failed or mismatched validation or audit): no retry helps.
        return orch.run_job("publish_snapshot.py", args, fail_fast_codes=(1,))

    @task(outlets=[TRAINING_SAMPLES])
    def announce_snapshot(
        published: dict[str, Any],
        validation: dict[str, Any],
        params=None,
        data_interval_start=None,
        data_interval_end=None,
    ):
        """Emit the asset event that names the new snapshot."""
        start, end = orch.run_interval(params, data_interval_start, data_interval_end)
        yield Metadata(
            TRAINING_SAMPLES, orch.snapshot_event_extra(published, validation, start, end)
        )

    published = publish_snapshot(validate.output, audit.output)
    wait >> validate >> audit
    announce_snapshot(published, validate.output)


reclake_training_snapshot()
