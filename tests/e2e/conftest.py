"""End-to-end harness: a throw-away AIRFLOW_HOME and lake, the metadata DB migrated and
airflow_settings.yaml applied, all through the real CLIs in subprocesses (this process never
imports Airflow with that home). The same driver (reclake.local_airflow) runs `make demo`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reclake.config import Settings
from reclake.local_airflow import CommandFailed, LocalAirflow, airflow_env


@dataclass
class AirflowHome:
    """A migrated Airflow home, its lake and what the first settings apply reported."""

    local: LocalAirflow
    lake: Path
    first_apply: str

    @property
    def home(self) -> Path:
        return self.local.home

    @property
    def env(self) -> dict[str, str]:
        return self.local.env

    @property
    def settings(self) -> Settings:
        """The reclake settings the DAG runs of this home see."""
        return Settings.from_env(self.env)

    def _checked(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except CommandFailed as exc:
            pytest.fail(str(exc))

    def run(self, *args: str, timeout: float = 300, check: bool = True):
        """Run a command with this environment; fails the test with its output on error."""
        return self._checked(self.local.run, *args, timeout=timeout, check=check)

    def airflow(self, *args: str, timeout: float = 300, check: bool = True):
        """Run the airflow CLI of this venv."""
        return self._checked(self.local.airflow, *args, timeout=timeout, check=check)

    def apply_settings(self, path: Path | None = None) -> str:
        """`python -m reclake.airflow_settings apply`; returns its report lines."""
        return self._checked(self.local.apply_settings, path)

    def dags_test(self, dag_id: str, logical_date: str | None, **kwargs):
        """One real `airflow dags test` run."""
        return self._checked(self.local.dags_test, dag_id, logical_date, **kwargs)


@pytest.fixture(name="airflow_env")
def airflow_env_fixture():
    """The environment builder, for tests that make their own AIRFLOW_HOME."""
    return lambda home, lake: airflow_env(home, str(lake))


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    """A fresh AIRFLOW_HOME with the DB migrated and airflow_settings.yaml applied once."""
    root = tmp_path_factory.mktemp("airflow-e2e")
    home, lake = root / "airflow", root / "lake"
    env = airflow_env(home, str(lake))
    # No allowed lateness: hour H is final once hour H + 1 has arrived, so two hourly runs
    # label one hour (four with the default 2 h) and the test needs half the Spark jobs.
    env["RECLAKE_ALLOWED_LATENESS_HOURS"] = "0"
    local = LocalAirflow(home, env)
    home.mkdir()
    try:
        local.airflow("db", "migrate", timeout=900)
        first = local.apply_settings()
    except CommandFailed as exc:
        pytest.fail(str(exc))
    return AirflowHome(local=local, lake=lake, first_apply=first)
