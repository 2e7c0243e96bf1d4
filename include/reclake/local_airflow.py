"""Drive a local Airflow through its real CLI: a home with its metadata DB migrated and
airflow_settings.yaml applied, then `airflow dags test` runs. `make demo` and the end-to-end
tests share it; nothing here imports Airflow (every call is a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclake.config import PROJECT_ROOT

VENV_BIN = Path(sys.executable).parent


def airflow_env(
    home: Path, lake_root: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for Airflow CLIs and the jobs they start: local, small, isolated."""
    base = os.environ if base is None else base
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(("AIRFLOW", "RECLAKE_")) and k != "PYTHONPATH"
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
        AIRFLOW__CORE__PARALLELISM="2",
        # Another Airflow on this machine (make airflow) may own the default log-server ports.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="18793",
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="18794",
        RECLAKE_LAKE_ROOT=str(lake_root),
        RECLAKE_SPARK_SHUFFLE_PARTITIONS="2",
        RECLAKE_SPARK_DRIVER_MEMORY="1g",
        PATH=f"{VENV_BIN}:{base.get('PATH', '')}",
        PYTHONPATH=str(PROJECT_ROOT / "include"),
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


class CommandFailed(RuntimeError):
    """A CLI call exited non-zero; carries the tail of its output."""


@dataclass
class LocalAirflow:
    """An Airflow home plus the environment every CLI call runs with."""

    home: Path
    env: dict[str, str]

    @classmethod
    def create(cls, home: Path, lake_root: str) -> LocalAirflow:
        """A home with the metadata DB migrated and airflow_settings.yaml applied."""
        home.mkdir(parents=True, exist_ok=True)
        local = cls(home, airflow_env(home, lake_root))
        local.airflow("db", "migrate", timeout=900)
        local.apply_settings()
        return local

    def run(self, *args: str, timeout: float = 600, check: bool = True):
        """Run a command in this environment; raises CommandFailed with its output on error."""
        proc = subprocess.run(
            list(args),
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise CommandFailed(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def airflow(self, *args: str, timeout: float = 600, check: bool = True):
        """Run the airflow CLI of this venv."""
        return self.run(str(VENV_BIN / "airflow"), *args, timeout=timeout, check=check)

    def apply_settings(self, path: Path | None = None) -> str:
        """`python -m reclake.airflow_settings apply`; returns its report lines."""
        path = path or PROJECT_ROOT / "airflow_settings.yaml"
        proc = self.run(
            sys.executable, "-m", "reclake.airflow_settings", "apply", "--file", str(path)
        )
        return proc.stdout

    def dags_test(
        self,
        dag_id: str,
        logical_date: str | None,
        *,
        conf: Mapping[str, Any] | None = None,
        mark_success: str | None = None,
        timeout: float = 2400,
        check: bool = True,
    ):
        """One real DAG run in-process (`airflow dags test`); a manual run of logical date X
        covers the data interval [X - one schedule step, X). Without a logical date the run is
        dated now: for DAGs driven by params, whose UI duration would otherwise count from X
        (`dags test` takes the logical date as the run's start)."""
        args = ["dags", "test", dag_id, *([logical_date] if logical_date else [])]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        if mark_success:
            args += ["--mark-success-pattern", mark_success]
        return self.airflow(*args, timeout=timeout, check=check)
