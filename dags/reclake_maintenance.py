"""
### reclake_maintenance

Keeps the Delta tables fast and small:

- every hour, `optimize`: compaction + Z-order of the recently written partitions;
- once a day (the run whose interval ends at 00:00 UTC), `vacuum`: the snapshot-aware vacuum
  that never deletes a file a live snapshot still needs. Other hours take `skip_vacuum`.

No catchup: maintenance acts on the tables' current state, not on an interval's data.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import CronDataIntervalTimetable, dag, task

from reclake import orchestration as orch
from reclake.config import load_settings

SETTINGS = load_settings()


@dag(
    dag_id="reclake_maintenance",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=orch.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(),
    tags=["reclake", "maintenance"],
    doc_md=__doc__,
)
def reclake_maintenance():
    optimize = orch.spark_job("optimize", "optimize.py", [], SETTINGS)

    @task.branch
    def daily_vacuum_due(data_interval_end: datetime | None = None) -> str:
        """vacuum on the day's last run, skip_vacuum otherwise."""
        return "vacuum" if orch.vacuum_due(data_interval_end) else "skip_vacuum"

    vacuum = orch.spark_job("vacuum", "vacuum.py", [], SETTINGS)
    skip_vacuum = EmptyOperator(task_id="skip_vacuum")

    optimize >> daily_vacuum_due() >> [vacuum, skip_vacuum]


reclake_maintenance()
