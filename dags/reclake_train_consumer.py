"""
### reclake_train_consumer

Scheduled on the Asset `reclake://gold/training_samples`: each new snapshot published by
`reclake_training_snapshot` triggers a run. `snapshot_from_event` reads the triggering asset
event's extra (the newest one if several queued up) and `train_ctr` runs
`examples/train_ctr.py --snapshot <snapshot_id>` on exactly that immutable snapshot.
"""

from __future__ import annotations

import shlex
import sys
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, dag, task

from reclake import orchestration as orch

TRAINING_SAMPLES = Asset(name="training_samples", uri=orch.TRAINING_SAMPLES_ASSET_URI)


@dag(
    dag_id="reclake_train_consumer",
    schedule=[TRAINING_SAMPLES],
    start_date=orch.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(),
    tags=["reclake", "training"],
    doc_md=__doc__,
)
def reclake_train_consumer():
    @task
    def snapshot_from_event(triggering_asset_events=None) -> dict[str, Any]:
        """The snapshot named by the asset event that triggered this run."""
        return orch.snapshot_from_events(triggering_asset_events)

    @task.bash(
        cwd=str(orch.EXAMPLES_DIR.parent),
        pool=orch.TRAINING_POOL,
        execution_timeout=timedelta(hours=2),
    )
    def train_ctr(snapshot: dict[str, Any]) -> str:
        """Shell command training the example CTR model on the snapshot."""
        script = str(orch.EXAMPLES_DIR / "train_ctr.py")
        return shlex.join([sys.executable, script, "--snapshot", snapshot["snapshot_id"]])

    train_ctr(snapshot_from_event())


reclake_train_consumer()
