"""A real Airflow server (`make airflow`, i.e. scripts/airflow.sh) driven the way users drive
it: through the REST API the UI itself calls.

One standalone for the whole file, over a small lake built in-process beforehand: the API
answers and lists the DAGs without import errors; the snapshot DAG triggered with a params
range publishes what is built, fails within minutes (with what each hour waits for) when the
hours are not built, with or without params; clearing a published run's tasks converges to
the same snapshot; `stop` leaves no process behind (the last test). Slow: marked e2e.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from reclake.config import Settings
from reclake.local_airflow import airflow_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = ["bash", str(REPO / "scripts" / "airflow.sh")]
SNAPSHOT = "reclake_training_snapshot"
FIRST = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
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


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%MZ")


@dataclass
class Server:
    """A running standalone: its port, a bearer token, its env, home and lake settings."""

    port: int
    token: str
    env: dict[str, str]
    home: Path
    pid: int
    start_output: str
    settings: Settings

    def api(self, path: str, body: dict | None = None, method: str | None = None):
        """JSON request to the REST API as admin."""
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://localhost:{self.port}{path}", data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def trigger(self, dag_id: str, conf: dict) -> str:
        """Trigger a run with conf, as the UI's trigger form does; returns its run id."""
        run = self.api(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        """Poll a run until it reaches a terminal state; returns it. A poll that times out
        (a loaded machine) is retried, not fatal."""
        deadline, run = time.monotonic() + timeout, {"state": "unknown"}
        while time.monotonic() < deadline:
            try:
                run = self.api(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")
            except (TimeoutError, urllib.error.URLError) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    raise
                continue
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        pytest.fail(f"{dag_id} run {run_id} still {run['state']} after {timeout} s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.api(path)["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
            f"/logs/{try_number}"
        )
        content = self.api(path).get("content", [])
        return "\n".join(
            line.get("event", "") if isinstance(line, dict) else str(line) for line in content
        )


def build_lake(settings: Settings, hours: int, sampled: int) -> None:
    """A small real lake: `hours` generated arrival hours ingested and tiled, the first
    `sampled` impression hours labeled and sampled, by the library in this process."""
    from reclake.features.dims import load_dims
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.spark import get_spark

    end = FIRST + hours * HOUR
    config = GeneratorConfig(events_per_hour=300, n_users=80, n_items=40)
    generate(settings, FIRST, end, config)
    spark = get_spark("e2e-server-lake", settings)
    try:
        ingest_events(spark, settings, FIRST, end)
        load_dims(spark, settings)
        build_tiles(spark, settings, FIRST, end)
        label_impressions(spark, settings, FIRST, FIRST + sampled * HOUR)
        build_training_samples(spark, settings, FIRST, FIRST + sampled * HOUR)
    finally:
        spark.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`scripts/airflow.sh start` over a lake with 2 sampled hours; stopped at the end.

    7 arrival hours with the default label lag of 3 h: impression hours 00:00-03:00 are final,
    00:00 and 01:00 labeled and sampled, 04:00 waits for arrival hour 07:00."""
    root = tmp_path_factory.mktemp("airflow-server")
    home, port = root / "airflow", free_port()
    env = {
        **airflow_env(home, str(root / "lake")),
        "AIRFLOW_PORT": str(port),
        # Generous: on a shared 2-core machine standalone has needed minutes to come up.
        "AIRFLOW_START_TIMEOUT": "540",
    }
    settings = Settings.from_env(env)
    build_lake(settings, hours=7, sampled=2)
    start = subprocess.run([*SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=720)
    assert start.returncode == 0, start.stdout + start.stderr
    pid = int((home / "standalone.pid").read_text())
    try:
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        request = urllib.request.Request(
            f"http://localhost:{port}/auth/token",
            data=json.dumps({"username": "admin", "password": password["admin"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        yield Server(port, token, env, home, pid, start.stdout, settings)
    finally:
        if group_members(pid):
            subprocess.run([*SCRIPT, "stop"], env=env, capture_output=True, timeout=300)
            if group_members(pid):
                os.killpg(pid, signal.SIGKILL)


def test_api_lists_the_dags_without_import_errors(server):
    password = json.loads(
        (server.home / "simple_auth_manager_passwords.json.generated").read_text()
    )
    assert f"login admin / {password['admin']}" in server.start_output
    assert f"ready at http://localhost:{server.port}" in server.start_output
    assert len(group_members(server.pid)) >= 5  # standalone + its four components
    assert server.api("/api/v2/version")["version"].startswith("3.")
    # The dag-processor needs a moment after start to parse and serialize the DAGs.
    deadline, dag_ids = time.monotonic() + 240, set()
    while time.monotonic() < deadline:
        dag_ids = {d["dag_id"] for d in server.api("/api/v2/dags")["dags"]}
        if len(dag_ids) >= 5:
            break
        time.sleep(3)
    assert dag_ids == {
        "reclake_backfill",
        "reclake_hourly",
        "reclake_maintenance",
        SNAPSHOT,
        "reclake_train_consumer",
    }
    assert server.api("/api/v2/importErrors")["total_entries"] == 0
    pools = {p["name"]: p["slots"] for p in server.api("/api/v2/pools")["pools"]}
    assert pools["spark"] == 1
    # The bounded catch-up timetable (a plugin) is what the scheduler sees.
    dag = server.api(f"/api/v2/dags/{SNAPSHOT}")
    assert "catch-up <= 3 days" in dag["timetable_summary"]
    anonymous = urllib.request.Request(f"http://localhost:{server.port}/api/v2/dags")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=30)
    assert refused.value.code in (401, 403)


def test_snapshot_of_built_hours_triggered_with_params_publishes(server):
    from reclake.snapshots.registry import list_snapshots

    # Unpausing (as the trigger form does) queues one scheduled run at most: the latest day.
    server.api(f"/api/v2/dags/{SNAPSHOT}", {"is_paused": False}, method="PATCH")
    conf = {"start": iso(FIRST), "end": iso(FIRST + 2 * HOUR)}
    run_id = server.trigger(SNAPSHOT, conf)
    run = server.wait_run(SNAPSHOT, run_id, timeout=900)
    states = server.task_states(SNAPSHOT, run_id)
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    snaps = list_snapshots(server.settings, "training_samples")
    assert [(s.interval_start, s.interval_end) for s in snaps] == [
        ("2026-11-20T00:00:00Z", "2026-11-20T02:00:00Z")
    ]
    assert snaps[0].row_count > 0 and snaps[0].audit["success"] is True
    runs = server.api(f"/api/v2/dags/{SNAPSHOT}/dagRuns")["dag_runs"]
    assert len(runs) <= 2  # the manual run and at most one scheduled (latest) day


def test_clearing_a_published_run_converges_to_the_same_snapshot(server):
    from reclake.snapshots.registry import latest_id, list_snapshots

    before = latest_id(server.settings, "training_samples")
    assert before is not None
    runs = server.api(f"/api/v2/dags/{SNAPSHOT}/dagRuns")["dag_runs"]
    (run_id,) = [r["dag_run_id"] for r in runs if r["run_type"] == "manual"]
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "task_ids": ["publish_snapshot", "announce_snapshot"],
        "only_failed": False,
        "reset_dag_runs": True,
    }
    cleared = server.api(f"/api/v2/dags/{SNAPSHOT}/clearTaskInstances", body)
    assert {t["task_id"] for t in cleared["task_instances"]} == {
        "publish_snapshot",
        "announce_snapshot",
    }
    time.sleep(2)
    run = server.wait_run(SNAPSHOT, run_id, timeout=600)
    assert run["state"] == "success", server.task_states(SNAPSHOT, run_id)
    assert latest_id(server.settings, "training_samples") == before
    assert len(list_snapshots(server.settings, "training_samples")) == 1


@pytest.mark.parametrize(
    "conf",
    [
        {"start": iso(FIRST + 2 * HOUR), "end": iso(FIRST + 5 * HOUR), "wait_minutes": 0.5},
        {"wait_minutes": 0.5},  # no range: the day before the trigger, never built here
    ],
    ids=["range", "no-params"],
)
def test_snapshot_of_hours_not_built_fails_in_minutes_saying_why(server, conf):
    run_id = server.trigger(SNAPSHOT, conf)
    run = server.wait_run(SNAPSHOT, run_id, timeout=900)
    assert run["state"] == "failed"
    states = server.task_states(SNAPSHOT, run_id)
    assert states["wait_for_samples"] == "failed"
    assert states["publish_snapshot"] == "upstream_failed"
    sensor = server.api(
        f"/api/v2/dags/{SNAPSHOT}/dagRuns/{quote(run_id)}/taskInstances/wait_for_samples"
    )
    text = server.task_log(SNAPSHOT, run_id, "wait_for_samples", sensor["try_number"])
    # It failed at its own deadline (first poke + wait_minutes), not at the 2-day backstop:
    # the last poke came at most a poke interval (plus scheduling) after that deadline.
    found = re.search(r"not built by (\d{4}-\d\d-\d\dT\d\d:\d\d)Z", text)
    assert found, text[-2000:]
    deadline = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
    ended = datetime.fromisoformat(sensor["end_date"].replace("Z", "+00:00"))
    assert timedelta(0) <= ended - deadline < timedelta(minutes=5)
    if "start" in conf:
        assert "3 hour(s) not built yet" in text
        assert "2 hour(s) wait for label_impressions (their labels are final): " in text
        assert "2026-11-20T02:00:00Z, 2026-11-20T03:00:00Z" in text
        assert "(arrival hour 2026-11-20T07:00:00Z not ingested yet)" in text


def test_stop_leaves_no_process_behind(server):
    components = group_members(server.pid)
    stop = subprocess.run(
        [*SCRIPT, "stop"], env=server.env, capture_output=True, text=True, timeout=300
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "airflow: stopped" in stop.stdout
    assert "killing leftover" not in stop.stdout + stop.stderr, "needed SIGKILL to stop"
    assert group_members(server.pid) == set()
    assert not any(Path(f"/proc/{p}").exists() for p in components)
    assert not (server.home / "standalone.pid").exists()
    again = subprocess.run([*SCRIPT, "stop"], env=server.env, capture_output=True, text=True)
    assert (again.returncode, again.stdout.strip()) == (0, "airflow: not running")
