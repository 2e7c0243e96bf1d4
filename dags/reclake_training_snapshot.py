"""
### reclake_training_snapshot

One run per UTC day `[D, D+1)`, after the day is over. Write-audit-publish of
`gold/training_samples`:

1. `snapshot_interval`: the hours to publish: the run's day, or params `start`/`end`.
2. `wait_for_samples`: waits until reclake's sample log records every hour of the interval
   as built (by hourly runs, a backfill, or by hand: whoever built them), an hour without
   impressions included. Each poke logs the hours still missing.
3. `validate_training_samples`: the Great Expectations gate over the interval. A failed gate
   fails the task at once (no retries), so publish never runs and the previous snapshot stays
   current.
4. `audit_training_samples`: recomputes a seeded, stratified sample of the validated version's
   rows straight from bronze and requires exact equality (docs/quality.md); fails like the gate.
5. `publish_snapshot`: publishes exactly the validated, audited version as an immutable
   snapshot; `python jobs/publish_snapshot.py`, no JVM.
6. `announce_snapshot`: emits an event on the Asset `reclake://gold/training_samples` whose
   extra carries snapshot_id, version, row_count, validation_id and the interval;
   `reclake_train_consumer` is scheduled on it.

Trigger with config `{"start": "2026-11-20T00:00Z", "end": "2026-11-20T06:00Z"}` to publish a
snapshot of any range of whole hours instead of the run's day (`make demo` does this).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, PokeReturnValue, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings

log = logging.getLogger(__name__)

SETTINGS = load_settings()
TRAINING_SAMPLES = Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI)
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
    @task
    def snapshot_interval(
        params=None, data_interval_start=None, data_interval_end=None
    ) -> dict[str, str]:
        """The hours to publish: params start/end when given, else the run's day."""
        from reclake.timeutil import iso

        start, end = orch.run_interval(params, data_interval_start, data_interval_end)
        return {"start": iso(start), "end": iso(end)}

    @task.sensor(
        poke_interval=300, timeout=int(timedelta(days=1).total_seconds()), mode="reschedule"
    )
    def wait_for_samples(interval: dict[str, str]) -> PokeReturnValue:
        """Done when reclake's sample log records every hour of the interval as built."""
        from reclake.timeutil import iso

        missing = orch.missing_samples(load_settings(), *orch.interval_of(interval))
        if missing:
            shown = ", ".join(iso(h) for h in missing[:5])
            log.info("samples not built yet for %d hour(s): %s", len(missing), shown)
        return PokeReturnValue(is_done=not missing)

    interval = snapshot_interval()
    first, _ = orch.write_audit_publish(SETTINGS, "snapshot_interval", TRAINING_SAMPLES)
    wait_for_samples(interval) >> first


reclake_training_snapshot()
