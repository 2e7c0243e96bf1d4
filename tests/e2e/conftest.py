"""End-to-end harness: a throw-away AIRFLOW_HOME and lake, the metadata DB migrated and
airflow_settings.yaml applied, all through the real CLIs in subprocesses (this process never
imports Airflow with that home)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass
class AirflowHome:
    """A migrated Airflow home plus the environment every CLI call runs with."""

    home: Path
    lake: Path
    env: dict[str, str]
    first_apply: str

    def run(self, *args: str, timeout: float = 300, check: bool = True):
        """Run a command with this environment; fails the test with its output on error."""
        proc = subprocess.run(
            list(args), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def airflow(self, *args: str, timeout: float = 300, check: bool = True):
        """Run the airflow CLI of this venv."""
        return self.run(str(VENV_BIN / "airflow"), *args, timeout=timeout, check=check)

    def apply_settings(self, path: Path | None = None) -> str:
        """`python -m reclake.airflow_settings apply`; returns its report lines."""
        path = path or REPO / "airflow_settings.yaml"
        proc = self.run(
            sys.executable, "-m", "reclake.airflow_settings", "apply", "--file", str(path)
        )
        return proc.stdout


def airflow_env(home: Path, lake: Path) -> dict[str, str]:
    """Environment for Airflow CLIs and the jobs they start: local, small, isolated."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "RECLAKE_")) and k != "PYTHONPATH"
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__PARALLELISM="2",
        # Other Airflow instances on this machine own the default log-server ports.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="18793",
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="18794",
        RECLAKE_LAKE_ROOT=str(lake),
        RECLAKE_SPARK_SHUFFLE_PARTITIONS="2",
        RECLAKE_SPARK_DRIVER_MEMORY="1g",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        PYTHONPATH=str(REPO / "include"),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


@pytest.fixture(name="airflow_env")
def airflow_env_fixture():
    """The environment builder, for tests that make their own AIRFLOW_HOME."""
    return airflow_env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    """A fresh AIRFLOW_HOME with the DB migrated and airflow_settings.yaml applied once."""
    root = tmp_path_factory.mktemp("airflow-e2e")
    home, lake = root / "airflow", root / "lake"
    home.mkdir()
    env = airflow_env(home, lake)
    af = AirflowHome(home=home, lake=lake, env=env, first_apply="")
    af.airflow("db", "migrate", timeout=600)
    af.first_apply = af.apply_settings()
    return af
