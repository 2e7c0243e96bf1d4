"""`make airflow` (scripts/airflow.sh) up and down: the API answers, lists the four DAGs with
no import errors, and `stop` leaves no process behind.

A file of its own so that, under `make test`'s two workers, it runs beside the Airflow DAG
runs of test_airflow_e2e.py rather than after them. Slow (minutes on 2 cores): marked e2e.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(pgid: int) -> set[int]:
    """PIDs of the live processes in a process group."""
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def api(port: int, path: str, token: str | None = None, body: dict | None = None):
    """JSON request to the local Airflow API."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://localhost:{port}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_make_airflow_starts_lists_the_dags_and_stops_cleanly(tmp_path, airflow_env):
    home, port = tmp_path / "airflow", free_port()
    env = {
        **airflow_env(home, tmp_path / "lake"),
        "AIRFLOW_PORT": str(port),
        # Generous: on a shared 2-core machine standalone has needed minutes to come up.
        "AIRFLOW_START_TIMEOUT": "540",
    }
    script = ["bash", str(REPO / "scripts" / "airflow.sh")]
    pid = None
    try:
        start = subprocess.run(
            [*script, "start"], env=env, capture_output=True, text=True, timeout=720
        )
        assert start.returncode == 0, start.stdout + start.stderr
        assert f"ready at http://localhost:{port}" in start.stdout
        pid = int((home / "standalone.pid").read_text())
        components = group_members(pid)
        assert len(components) >= 5  # standalone + api-server, scheduler, triggerer, processor

        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        assert f"login admin / {password['admin']}" in start.stdout
        token = api(port, "/auth/token", body={"username": "admin", "password": password["admin"]})
        token = token["access_token"]
        assert api(port, "/api/v2/version", token)["version"].startswith("3.")

        # The dag-processor needs a moment after start to parse and serialize the DAGs.
        deadline, dag_ids = time.monotonic() + 240, set()
        while time.monotonic() < deadline:
            dag_ids = {d["dag_id"] for d in api(port, "/api/v2/dags", token)["dags"]}
            if len(dag_ids) >= 5:
                break
            time.sleep(3)
        assert dag_ids == {
            "reclake_backfill",
            "reclake_hourly",
            "reclake_maintenance",
            "reclake_training_snapshot",
            "reclake_train_consumer",
        }
        assert api(port, "/api/v2/importErrors", token)["total_entries"] == 0
        pools = {p["name"]: p["slots"] for p in api(port, "/api/v2/pools", token)["pools"]}
        assert pools["spark"] == 1

        stop = subprocess.run(
            [*script, "stop"], env=env, capture_output=True, text=True, timeout=300
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "airflow: stopped" in stop.stdout
        assert "killing leftover" not in stop.stdout + stop.stderr, "needed SIGKILL to stop"
        assert group_members(pid) == set()
        assert not any(Path(f"/proc/{p}").exists() for p in components)
        assert not (home / "standalone.pid").exists()
        again = subprocess.run([*script, "stop"], env=env, capture_output=True, text=True)
        assert (again.returncode, again.stdout.strip()) == (0, "airflow: not running")
    finally:
        if pid is not None and group_members(pid):
            subprocess.run([*script, "stop"], env=env, capture_output=True, timeout=300)
            if group_members(pid):
                os.killpg(pid, signal.SIGKILL)
