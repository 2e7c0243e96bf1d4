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
2. `want_<stage>` gates: each runs whether the stage before it ran or was skipped, and
   skips its stage unless `stages` (default all) names it; `want_publish` likewise.
3. `ingest_events` -> `build_tiles` -> `label_impressions` -> `build_training_samples`, with
   `load_dims` before the samples.
4. With `publish: true`: pin the version, validate and audit it side by side, publish a
   snapshot of the sampled range and announce it on the Asset
   `reclake://gold/training_samples`, as reclake_training_snapshot does.

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

    planned = plan()

    def wanted(step: str):
        """A gate before a stage: skips it (and only it) unless the plan asks for it; runs
        whether the stage before it ran or was skipped."""

        @task(task_id=f"want_{step}", trigger_rule="none_failed")
        def gate(planned: dict[str, Any]) -> None:
            from airflow.sdk.exceptions import AirflowSkipException

            if not orch.backfill_wants(planned, step):
                raise AirflowSkipException(f"{step} was not asked for")

        return gate(planned)

    def stage(step: str, job: str, args: list[str]):
        """(gate, spark job) of one stage."""
        gate = wanted(step)
        operator = orch.spark_job(orch.BACKFILL_STAGES[step], job, args, SETTINGS)
        gate >> operator
        return gate, operator

    _, ingest = stage("ingest", "ingest_events.py", [*ARRIVALS, *CHUNK])
    _, dims = stage("dims", "load_dims.py", [])
    want_tiles, tiles = stage("tiles", "build_tiles.py", [*ARRIVALS, *CHUNK])
    want_labels, labels = stage("labels", "label_impressions.py", [*SAMPLED, *CHUNK])
    want_samples, samples = stage("samples", "build_training_samples.py", [*SAMPLED, *CHUNK])
    want_publish = wanted("publish")
    validate, _ = orch.write_audit_publish(SETTINGS, "plan", TRAINING_SAMPLES)

    ingest >> want_tiles
    tiles >> want_labels
    [labels, dims] >> want_samples
    samples >> want_publish >> validate


reclake_backfill()
