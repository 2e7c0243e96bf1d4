"""
### reclake_backfill

Months of history in one run, at the cost of its rows: trigger it from the UI (or
`airflow dags trigger reclake_backfill -c '{...}'`) with the arrival hours `[start, end)`.
Each stage is one spark-submit over the whole range that works through it in chunks of
`chunk_hours` (one set-based computation and one commit per table per chunk), logging each
chunk's progress in the task log:

1. `plan`: checks the params and derives the ranges. Arrival hours `[start, end)` are
   ingested and folded into the tiles; impressions of `[start, end - lag)` are labeled and
   sampled (lag = the label lag of reclake_hourly: later hours are not final yet; the hourly
   run of arrival hour `end` labels hour `end - lag`, so reclake_hourly continues right where
   the backfill stopped, from the window checkpoint the backfill stored).
2. `choose_stages`: runs only the `stages` asked for (default all); a stage left out is
   skipped, the later ones still run.
3. `ingest_events` -> `build_tiles` -> `label_impressions` -> `build_training_samples`, with
   `load_dims` before the samples.
4. With `publish: true`: validate, audit and publish a snapshot of the sampled range, and
   announce it on the Asset `reclake://gold/training_samples`, as reclake_training_snapshot does.

Every stage is idempotent: re-running any range, or clearing a task, converges to the same
lake content.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Param, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings

SETTINGS = load_settings()
TRAINING_SAMPLES = Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI)
ARRIVALS = ["--start", orch.xcom_field("plan", "arrival_start")]
ARRIVALS += ["--end", orch.xcom_field("plan", "arrival_end")]
SAMPLED = ["--start", orch.xcom_field("plan", "start"), "--end", orch.xcom_field("plan", "end")]
CHUNK = ["--chunk-hours", orch.xcom_field("plan", "chunk_hours")]
# A stage left out by choose_stages is skipped; the stages after it still run.
AFTER_SKIPS = "none_failed_min_one_success"


@dag(
    dag_id="reclake_backfill",
    schedule=None,
    start_date=orch.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(),
    tags=["reclake", "backfill"],
    params={
        "start": Param(
            "2026-11-20T00:00Z",
            type="string",
            description="first arrival hour to load (UTC, whole hour)",
        ),
        "end": Param("2026-11-21T00:00Z", type="string", description="end arrival hour, exclusive"),
        "chunk_hours": Param(
            168,
            type="integer",
            minimum=1,
            description="hours per set-based computation and commit (bounds memory)",
        ),
        "stages": Param(
            list(orch.BACKFILL_STAGES),
            type="array",
            items={"type": "string", "enum": list(orch.BACKFILL_STAGES)},
            description="stages to run, in pipeline order whatever the order given",
        ),
        "publish": Param(
            False, type="boolean", description="validate, audit and publish the sampled range"
        ),
    },
    doc_md=__doc__,
)
def reclake_backfill():
    @task
    def plan(params=None) -> dict[str, Any]:
        """The ranges and chunking of this backfill; a clear error for bad params."""
        from airflow.sdk.exceptions import AirflowFailException

        try:
            return orch.backfill_plan(params or {}, orch.label_lag_hours(load_settings()))
        except ValueError as exc:
            raise AirflowFailException(f"bad backfill params: {exc}") from exc

    @task.branch
    def choose_stages(planned: dict[str, Any]) -> list[str]:
        """The task ids of the stages asked for."""
        return orch.backfill_task_ids(planned)

    def stage(task_id: str, job: str, args: list[str]):
        return orch.spark_job(task_id, job, args, SETTINGS, trigger_rule=AFTER_SKIPS)

    ingest = stage("ingest_events", "ingest_events.py", [*ARRIVALS, *CHUNK])
    dims = stage("load_dims", "load_dims.py", [])
    tiles = stage("build_tiles", "build_tiles.py", [*ARRIVALS, *CHUNK])
    labels = stage("label_impressions", "label_impressions.py", [*SAMPLED, *CHUNK])
    samples = stage("build_training_samples", "build_training_samples.py", [*SAMPLED, *CHUNK])
    validate, _ = orch.write_audit_publish(SETTINGS, "plan", TRAINING_SAMPLES)
    validate.trigger_rule = AFTER_SKIPS

    chosen = choose_stages(plan())
    chosen >> [ingest, dims, tiles, labels, samples, validate]
    ingest >> tiles >> labels >> samples >> validate
    dims >> samples


reclake_backfill()
