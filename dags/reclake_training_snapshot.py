"""
### reclake_training_snapshot

One run per UTC day `[D, D+1)`, after the day is over. Write-audit-publish of
`gold/training_samples`:

1. `snapshot_interval`: the hours to publish: the run's day, or params `start`/`end`; a manual
   run without params and without a logical date (the trigger form's default) covers the
   whole UTC day before it was triggered.
2. `wait_for_samples`: waits until reclake's sample log records every hour of the interval
   as built (by hourly runs, a backfill, or by hand: whoever built them), an hour without
   impressions included. Each poke (every minute) logs the hours still missing and the step
   each waits for (ingest, labels, samples). A manual run fails after 10 minutes (params
   `wait_minutes`) with that list; a scheduled run waits as long as its day can take
   (label lag + the hourly DAG's 6 h landing wait + 1 h).
3. `pin_version`: the training_samples version to check and publish (its newest then).
4. `validate_training_samples` and `audit_training_samples`, side by side on that version:
   the Great Expectations gate over the interval (a Spark job), and the point-in-time audit
   (plain Python, no JVM) that recomputes a seeded, stratified sample of the rows straight
   from bronze and requires exact equality (docs/quality.md). Either failing fails at once
   (no retries), so publish never runs and the previous snapshot stays current.
5. `publish_snapshot`: publishes exactly the pinned version, validated and audited, as an
   immutable snapshot; `python jobs/publish_snapshot.py`, no JVM.
6. `announce_snapshot`: emits an event on the Asset `reclake://gold/training_samples` whose
   extra carries snapshot_id, version, row_count, validation_id and the interval;
   `reclake_train_consumer` is scheduled on it.

Trigger with config `{"start": "2026-11-20T00:00Z", "end": "2026-11-20T06:00Z"}` to publish a
snapshot of any range of whole hours instead of the run's day (`make demo` does this).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, Param, PokeReturnValue, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings
from reclake.schedules import BoundedCatchupTimetable

log = logging.getLogger(__name__)

SETTINGS = load_settings()
TRAINING_SAMPLES = Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI)
HOUR_PARAM = {"type": ["null", "string"]}


@dag(
    dag_id="reclake_training_snapshot",
    schedule=BoundedCatchupTimetable("0 0 * * *", "UTC", max_catchup=timedelta(days=3)),
    start_date=orch.START_DATE,
    catchup=True,
    # A manual run never queues behind a scheduled one still waiting for its day; the
    # registry's appends are atomic and publish runs one at a time (max_active_tis_per_dag).
    max_active_runs=3,
    default_args=orch.default_args(),
    tags=["reclake", "daily", "snapshot"],
    params={
        "start": Param(
            None, description="first hour to publish (default: the run's day)", **HOUR_PARAM
        ),
        "end": Param(None, description="end hour, exclusive", **HOUR_PARAM),
        "wait_minutes": Param(
            None,
            type=["null", "number"],
            description="how long to wait for hours not built yet (default: 10 minutes for a "
            "manual run; for a scheduled run, until its day can be final)",
        ),
    },
    doc_md=__doc__,
)
def reclake_training_snapshot():
    @task
    def snapshot_interval(
        params=None, data_interval_start=None, data_interval_end=None, dag_run=None
    ) -> dict[str, str]:
        """The hours to publish: params start/end when given, else the run's day (for a manual
        run without a logical date, the day before it was triggered)."""
        from reclake.timeutil import iso

        run_after = dag_run.run_after if dag_run else None
        start, end = orch.run_interval(params, data_interval_start, data_interval_end, run_after)
        return {"start": iso(start), "end": iso(end)}

    # The deadline is the sensor's own (samples_deadline); timeout is only a backstop.
    @task.sensor(
        poke_interval=60, timeout=int(timedelta(days=2).total_seconds()), mode="reschedule"
    )
    def wait_for_samples(interval: dict[str, str], params=None, dag_run=None) -> PokeReturnValue:
        """Done when reclake's sample log records every hour of the interval as built; fails
        with what the missing hours wait for once the run's deadline passes."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from reclake.progress import describe_pending, pending_samples

        settings = load_settings()
        start, end = orch.interval_of(interval)
        pending = pending_samples(settings, start, end)
        if not pending:
            return PokeReturnValue(is_done=True)
        context = get_current_context()
        first_poke = context["ti"].get_first_reschedule_date(context) or datetime.now(UTC)
        deadline = orch.samples_deadline(
            first_poke,
            end,
            str(dag_run.run_type) if dag_run else "manual",
            orch.label_lag_hours(settings),
            (params or {}).get("wait_minutes"),
        )
        summary = describe_pending(pending)
        if datetime.now(UTC) >= deadline:
            raise AirflowFailException(
                f"samples of [{interval['start']}, {interval['end']}) not built by "
                f"{deadline:%Y-%m-%dT%H:%M}Z: {summary}. Build them (reclake_backfill, or the "
                "hourly runs) and trigger again, or give params wait_minutes to wait longer."
            )
        log.info("%s; waiting until %sZ", summary, f"{deadline:%Y-%m-%dT%H:%M}")
        return PokeReturnValue(is_done=False)

    interval = snapshot_interval()
    first, _ = orch.write_audit_publish(SETTINGS, "snapshot_interval", TRAINING_SAMPLES)
    wait_for_samples(interval) >> first


reclake_training_snapshot()
