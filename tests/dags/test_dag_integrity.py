"""Every DAG parses, follows the house rules, and parsing does no I/O against Airflow's DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, timedelta

import pytest

from reclake import orchestration as orch
from reclake.airflow_settings import load
from reclake.config import PROJECT_ROOT as REPO

DAGS_DIR = REPO / "dags"

EXPECTED_DAGS = {
    "reclake_backfill",
    "reclake_hourly",
    "reclake_maintenance",
    "reclake_training_snapshot",
    "reclake_train_consumer",
}


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_five_dags_are_there(dags):
    assert set(dags) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_follows_house_rules(dags, dag_id):
    dag = dags[dag_id]
    assert dag.tags, "tags are required"
    assert set(dag.tags) <= orch.ALLOWED_TAGS, f"tags outside the allowed set: {dag.tags}"
    assert "reclake" in dag.tags
    assert dag.doc_md and dag_id in dag.doc_md, "doc_md=__doc__ describing the DAG"
    assert dag.start_date.utcoffset() == timedelta(0)
    # Runs in order; the snapshot DAG lets a manual run pass a scheduled one still waiting for
    # its day, and publishes one at a time instead.
    if dag_id == "reclake_training_snapshot":
        assert dag.max_active_runs == 3
        assert dag.get_task("publish_snapshot").max_active_tis_per_dag == 1
    else:
        assert dag.max_active_runs == 1


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_every_task_retries_times_out_and_reports_failures(dags, dag_id):
    pools = {p["pool_name"] for p in load(REPO / "airflow_settings.yaml")["pools"]}
    for task in dags[dag_id].tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff > 0, task.task_id
        assert task.execution_timeout is not None, task.task_id
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert orch.on_failure in callbacks, task.task_id
        assert task.pool in pools | {"default_pool"}, f"{task.task_id}: unknown pool {task.pool}"


def parse_watched(folder, monkeypatch):
    """Parse a folder with a fresh DagBag; connection/Variable lookups raise, SQL is counted."""
    import airflow.sdk
    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    lookups: list[str] = []

    def forbidden(name):
        def lookup(*args, **kwargs):
            lookups.append(name)
            raise AssertionError(f"{name} called while parsing DAGs")

        return lookup

    monkeypatch.setattr(
        airflow.sdk.BaseHook, "get_connection", forbidden("BaseHook.get_connection")
    )
    monkeypatch.setattr(airflow.sdk.Connection, "get", forbidden("Connection.get"))
    monkeypatch.setattr(airflow.sdk.Variable, "get", forbidden("Variable.get"))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        bag = DagBag(dag_folder=str(folder))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return bag, lookups, statements


def test_parsing_does_no_db_queries_and_no_connection_or_variable_lookups(monkeypatch):
    bag, lookups, statements = parse_watched(DAGS_DIR, monkeypatch)
    assert set(bag.dags) == EXPECTED_DAGS
    assert bag.import_errors == {}
    assert lookups == []
    assert statements == []


# The watch itself must catch offenders, or the test above proves nothing.
BAD_DAGS = {
    "variable": "from airflow.sdk import Variable\nVariable.get('lake')\n",
    "connection": "from airflow.sdk import BaseHook\nBaseHook.get_connection('spark_default')\n",
    "sql": (
        "from sqlalchemy import text\nfrom airflow import settings\n"
        "settings.engine.connect().execute(text('select 1'))\n"
    ),
}


@pytest.mark.parametrize("offence", sorted(BAD_DAGS))
def test_the_watch_catches_parse_time_lookups(tmp_path, monkeypatch, offence):
    (tmp_path / "bad_dag.py").write_text("# airflow dag\n" + BAD_DAGS[offence])
    _bag, lookups, statements = parse_watched(tmp_path, monkeypatch)
    assert lookups or statements, f"{offence} went unnoticed"


def test_parsing_imports_nothing_heavy():
    """Parse dags/ in a clean interpreter; the heavy libraries must not be loaded."""
    heavy = ["pyspark", "great_expectations", "torch", "pyarrow", "deltalake", "pandas"]
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_DIR)!r})\n"
        "print(json.dumps({'dags': sorted(bag.dags), 'errors': list(bag.import_errors),\n"
        f"  'heavy': [m for m in {heavy!r} if m in sys.modules]}}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"dags": sorted(EXPECTED_DAGS), "errors": [], "heavy": []}


def test_start_dates_are_fixed_utc(dags):
    for dag in dags.values():
        assert dag.start_date == orch.START_DATE
        assert dag.start_date.tzinfo is not None
        assert dag.start_date.astimezone(UTC) == orch.START_DATE
