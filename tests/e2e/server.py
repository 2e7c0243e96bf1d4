"""Harness for the tests that drive a real Airflow server (`scripts/airflow.sh`, i.e.
`make airflow`): a small lake built by the library's jobs, the server started over it, and
a client for its REST API and for reclake's view (bearer tokens, form posts)."""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from reclake.config import Settings
from reclake.timeutil import HOUR

REPO = Path(__file__).resolve().parents[2]
SCRIPT = ["bash", str(REPO / "scripts" / "airflow.sh")]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
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


def param_hour(dt: datetime) -> str:
    """An hour as users type it into the trigger form."""
    return dt.strftime("%Y-%m-%dT%H:%MZ")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, *, token: str | None = None, data: dict | None = None, accept="*/*"):
    """(status, headers, body) of one HTTP request (a form post with data), redirects not
    followed."""
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers), timeout=60) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


@dataclass
class Server:
    """A running standalone: its URL, env, home, lake settings and what built the lake."""

    port: int
    env: dict[str, str]
    home: Path
    pid: int
    start_output: str
    settings: Settings
    lake: dict = field(default_factory=dict)
    admin_token: str = ""

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def passwords(self) -> dict[str, str]:
        """The users' generated passwords, as `airflow.sh start` prints them."""
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())

    def token(self, user: str = "admin") -> str:
        """A bearer token from POST /auth/token (the REST API's way in)."""
        payload = json.dumps({"username": user, "password": self.passwords[user]}).encode()
        req = urllib.request.Request(
            f"{self.url}/auth/token", data=payload, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["access_token"]

    def api(self, path: str, body: dict | None = None, method: str | None = None):
        """JSON request to the REST API as admin."""
        if not self.admin_token:
            self.admin_token = self.token("admin")
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.admin_token}",
        }
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as response:
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
        """task id -> state of one run."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.api(path)["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The text of one task try's log."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
            f"/logs/{try_number}"
        )
        content = self.api(path).get("content", [])
        return "\n".join(
            line.get("event", "") if isinstance(line, dict) else str(line) for line in content
        )


def build_lake(settings: Settings, first: datetime, hours: int, sampled: int) -> dict:
    """A small real lake built by the library in this process: `hours` generated arrival
    hours (with the generator's usual share of bad lines) ingested and tiled, bronze optimized,
    the first `sampled` impression hours labeled and sampled. Returns what the jobs reported."""
    from reclake.features.dims import load_dims
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.maintenance.optimize import optimize_table
    from reclake.spark import get_spark

    end = first + hours * HOUR
    config = GeneratorConfig(events_per_hour=300, n_users=80, n_items=40)
    generated = generate(settings, first, end, config)
    spark = get_spark("e2e-server-lake", settings)
    try:
        ingest = ingest_events(spark, settings, first, end)
        load_dims(spark, settings)
        build_tiles(spark, settings, first, end)
        label_impressions(spark, settings, first, first + sampled * HOUR)
        build_training_samples(spark, settings, first, first + sampled * HOUR)
        optimize_table(spark, settings, "events")
    finally:
        spark.stop()
    return {"generated": generated, "ingest": ingest}


def suites_without_drift(folder: Path) -> Path:
    """A copy of the expectation suites with training_samples' drift check off: a lake of a
    few hours has no stable distribution to compare snapshots by, so drift there would be the
    test data's, not a defect."""
    shutil.copytree(Settings().expectations_dir, folder)
    suite = json.loads((folder / "training_samples.json").read_text())
    suite["checks"]["distribution_drift"]["enabled"] = False
    (folder / "training_samples.json").write_text(json.dumps(suite))
    return folder
