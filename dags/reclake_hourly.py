"""
### reclake_hourly

One run per **arrival hour** `[data_interval_start, data_interval_end)` (UTC, catchup on,
runs strictly in order):

1. `wait_for_landing_drop`: waits (reschedule mode) for the hour's landing folder
   `landing/events/date=D/hour=H`.
2. `ingest_events`: the arrival hour's drop into `bronze/events` (+ quarantine).
3. `load_dims`: dimension drops into `dims/users`, `dims/items`.
4. `build_tiles`: folds the arrival hour's bronze rows into the hourly tiles (the job rebuilds
   every event hour those rows touch, so late events land in their own hour).
5. `label_impressions` + `build_training_samples` + `validate_training_samples`: for the
   impression hour whose attribution window and lateness have closed: the data interval shifted
   back by `1 + attribution_window_minutes // 60 + allowed_lateness_hours` hours (3 by default).
   `labeled_hour_in_lake` skips these three while that hour lies before the lake's first
   ingested arrival hour (the first runs of a new lake): there is nothing to label there.

Every Spark step is a spark-submit of `jobs/<step>.py` through the `spark_default` connection
in the `spark` pool. See docs/airflow.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import PokeReturnValue, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings
from reclake.schedules import BoundedCatchupTimetable

SETTINGS = load_settings()
LAG = orch.label_lag_hours(SETTINGS)
LABELED = ["--start", orch.shifted("data_interval_start", LAG)]
LABELED += ["--end", orch.shifted("data_interval_end", LAG)]


@dag(
    dag_id="reclake_hourly",
    # Data intervals (Airflow 3's "@hourly" has zero-length ones), bounded catch-up: a new
    # lake starts at the latest hour (reclake_backfill loads history), an outage self-heals.
    schedule=BoundedCatchupTimetable("0 * * * *", "UTC", max_catchup=timedelta(hours=24)),
    start_date=orch.START_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=orch.default_args(),
    tags=["reclake", "hourly"],
    doc_md=__doc__,
)
def reclake_hourly():
    @task.sensor(
        poke_interval=300, timeout=int(orch.LANDING_WAIT.total_seconds()), mode="reschedule"
    )
    def wait_for_landing_drop(data_interval_start: datetime | None = None) -> PokeReturnValue:
        """Done when the arrival hour's landing folder exists."""
        from reclake import lakefs

        uri = orch.landing_drop_uri(load_settings(), data_interval_start)
        return PokeReturnValue(is_done=lakefs.exists(uri), xcom_value=uri)

    @task.short_circuit
    def labeled_hour_in_lake(data_interval_start: datetime | None = None) -> bool:
        """False while the hour to label precedes the lake's first ingested arrival hour."""
        from reclake.ingest import ingested_hours

        return orch.labeled_hour_in_lake(data_interval_start, LAG, ingested_hours(load_settings()))

    ingest = orch.spark_job(
        "ingest_events", "ingest_events.py", ["--start", orch.START, "--end", orch.END], SETTINGS
    )
    dims = orch.spark_job("load_dims", "load_dims.py", [], SETTINGS)
    tiles = orch.spark_job(
        "build_tiles", "build_tiles.py", ["--start", orch.START, "--end", orch.END], SETTINGS
    )
    labels = orch.spark_job("label_impressions", "label_impressions.py", LABELED, SETTINGS)
    samples = orch.spark_job(
        "build_training_samples", "build_training_samples.py", LABELED, SETTINGS
    )
    validate = orch.spark_job(
        "validate_training_samples",
        "validate.py",
        ["--table", "training_samples", *LABELED],
        SETTINGS,
        capture_result=True,
    )

    in_lake = labeled_hour_in_lake()
    wait_for_landing_drop() >> ingest >> [tiles, in_lake]
    in_lake >> labels
    [dims, tiles, labels] >> samples >> validate


reclake_hourly()
