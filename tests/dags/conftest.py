"""DAG tests run against a throw-away AIRFLOW_HOME: set before anything imports Airflow."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"

# Airflow reads its configuration when first imported, so this must run at import time.
_HOME = tempfile.mkdtemp(prefix="reclake-airflow-dags-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# A RECLAKE_* value the DAGs must pass through to every spark-submit (asserted in the tests);
# not a Settings field, so it changes nothing for other tests in the same session.
os.environ["RECLAKE_DAG_TEST_PASSTHROUGH"] = "passed-through"


def pytest_sessionfinish(session, exitstatus):
    """Remove the throw-away AIRFLOW_HOME."""
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def dagbag():
    """All DAGs of dags/, parsed once by a real DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="session")
def dags(dagbag):
    """dag_id -> DAG for every DAG that parsed."""
    return dict(dagbag.dags)
