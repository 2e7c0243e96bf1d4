"""A real Airflow server (`make airflow`, i.e. scripts/airflow.sh) driven the way users drive
it: through the REST API the UI itself calls, and through a browser.

One standalone for the whole file (its tests run in order and build on each other), over a
small lake built in-process beforehand (7 arrival hours, 2 impression hours sampled):

- the API answers and lists the DAGs without import errors, anonymous calls are refused;
- `reclake_training_snapshot` triggered with a params range of built hours publishes (the
  first snapshot); clearing its publish converges to the same snapshot; `reclake_backfill`
  triggered with params re-samples an hour and publishes it (a new table version: the
  second snapshot, latest);
- reclake's view (plugins/reclake_view.py), browsed by headless Chromium logged in through
  Airflow's login form: every page checked against the lake's real figures, screenshots in
  artifacts/ui/ (git-ignored); anonymous and viewer requests refused; rollback needs the
  admin's confirmation;
- the snapshot DAG over hours not built, with or without params, fails at its own deadline
  with what each hour waits for;
- `stop` leaves no process behind (the last test).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from reclake.config import Settings
from reclake.local_airflow import airflow_env
from reclake.snapshots.deltars import open_table
from reclake.tables import table
from reclake.timeutil import HOUR, iso
from tests.e2e.browser import BrowserError, Chromium, chromium_binary
from tests.e2e.server import (
    REPO,
    SCRIPT,
    Server,
    build_lake,
    free_port,
    group_members,
    param_hour,
    request,
    suites_without_drift,
)

SNAPSHOT = "reclake_training_snapshot"
BACKFILL = "reclake_backfill"
FIRST = datetime(2026, 11, 20, tzinfo=UTC)
ARRIVED = 7  # arrival hours in the lake
SAMPLED = 2  # impression hours labeled and sampled
VIEW = "/reclake"
ARTIFACTS = REPO / "artifacts" / "ui"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`scripts/airflow.sh start` (users admin and viewer) over the lake; stopped at the end.

    With the default label lag of 3 h: impression hours 00:00-03:00 are final, 00:00 and
    01:00 labeled and sampled, 04:00 waits for arrival hour 07:00."""
    root = tmp_path_factory.mktemp("airflow-server")
    home, port = root / "airflow", free_port()
    env = {
        **airflow_env(home, str(root / "lake")),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "RECLAKE_EXPECTATIONS_DIR": str(suites_without_drift(root / "expectations")),
        # Generous: on a shared 2-core machine standalone has needed minutes to come up (399 s
        # in a CI run with four test workers).
        "AIRFLOW_START_TIMEOUT": "900",
    }
    settings = Settings.from_env(env)
    lake = build_lake(settings, FIRST, hours=ARRIVED, sampled=SAMPLED)
    start = subprocess.run(
        [*SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=1080
    )
    assert start.returncode == 0, start.stdout + start.stderr
    pid = int((home / "standalone.pid").read_text())
    try:
        yield Server(port, env, home, pid, start.stdout, settings, lake)
    finally:
        if group_members(pid):
            subprocess.run([*SCRIPT, "stop"], env=env, capture_output=True, timeout=300)
            if group_members(pid):
                os.killpg(pid, signal.SIGKILL)


def snapshots(server: Server):
    from reclake.snapshots.registry import list_snapshots

    return list_snapshots(server.settings, "training_samples")


# --- the REST API -------------------------------------------------------------------------


def test_api_lists_the_dags_without_import_errors(server):
    for user, password in server.passwords.items():
        assert f"login {user} / {password}" in server.start_output
    assert f"ready at {server.url}" in server.start_output
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
        BACKFILL,
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
    anonymous = urllib.request.Request(f"{server.url}/api/v2/dags")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=30)
    assert refused.value.code in (401, 403)


def test_snapshot_of_built_hours_triggered_with_params_publishes(server):
    # Unpausing (as the trigger form does) queues one scheduled run at most: the latest day.
    server.api(f"/api/v2/dags/{SNAPSHOT}", {"is_paused": False}, method="PATCH")
    conf = {"start": param_hour(FIRST), "end": param_hour(FIRST + SAMPLED * HOUR)}
    run_id = server.trigger(SNAPSHOT, conf)
    # Bounds for a hung run only: CI's loaded runs took up to 550 s for runs like this.
    run = server.wait_run(SNAPSHOT, run_id, timeout=1800)
    states = server.task_states(SNAPSHOT, run_id)
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    (snap,) = snapshots(server)
    assert (snap.interval_start, snap.interval_end) == (iso(FIRST), iso(FIRST + SAMPLED * HOUR))
    assert snap.row_count > 0 and snap.audit["success"] is True
    runs = server.api(f"/api/v2/dags/{SNAPSHOT}/dagRuns")["dag_runs"]
    assert len(runs) <= 2  # the manual run and at most one scheduled (latest) day


def test_clearing_a_published_run_converges_to_the_same_snapshot(server):
    from reclake.snapshots.registry import latest_id

    before = latest_id(server.settings, "training_samples")
    assert before == snapshots(server)[-1].id
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
    run = server.wait_run(SNAPSHOT, run_id, timeout=1200)
    assert run["state"] == "success", server.task_states(SNAPSHOT, run_id)
    assert latest_id(server.settings, "training_samples") == before
    assert len(snapshots(server)) == 1


def test_backfill_triggered_with_params_samples_and_publishes(server):
    from reclake.features.samples import SAMPLE_LOG_DIR
    from reclake.hourlog import read_hour_docs
    from reclake.snapshots.registry import latest_id

    server.api(f"/api/v2/dags/{BACKFILL}", {"is_paused": False}, method="PATCH")
    # Arrival hours [01:00, 05:00): with the 3 h label lag, impression hour 01:00 is sampled
    # (a bootstrap from the tiles: the fixture stored the checkpoint of 01:00, not 00:00).
    conf = {
        "start": param_hour(FIRST + HOUR),
        "end": param_hour(FIRST + 5 * HOUR),
        "stages": ["samples"],
        "publish": True,
    }
    run_id = server.trigger(BACKFILL, conf)
    run = server.wait_run(BACKFILL, run_id, timeout=1800)
    states = server.task_states(BACKFILL, run_id)
    assert run["state"] == "success", states
    skipped = {"ingest_events", "load_dims", "build_tiles", "label_impressions"}
    assert {t for t, s in states.items() if s == "skipped"} == skipped | {
        f"want_{step}" for step in ("ingest", "dims", "tiles", "labels")
    }
    assert states["build_training_samples"] == states["publish_snapshot"] == "success"
    # Hour 01:00 was re-sampled by the backfill's run; 00:00 still by the fixture's.
    docs = read_hour_docs(server.settings, SAMPLE_LOG_DIR, FIRST, FIRST + ARRIVED * HOUR)
    assert [d["run"] for d in docs] == [
        [iso(FIRST), iso(FIRST + SAMPLED * HOUR)],
        [iso(FIRST + HOUR), iso(FIRST + 2 * HOUR)],
    ]
    # A new table version (the hour's rows rewritten, not changed) and its snapshot is latest.
    first, second = snapshots(server)
    interval = (iso(FIRST + HOUR), iso(FIRST + 2 * HOUR))
    assert (second.interval_start, second.interval_end) == interval
    assert second.version > first.version and second.row_count == first.row_count
    assert second.audit["success"] is True
    assert latest_id(server.settings, "training_samples") == second.id


# --- reclake's view in the UI --------------------------------------------------------------


def test_anonymous_requests_to_the_view_are_refused(server):
    url = server.url + VIEW
    status, headers, _ = request(f"{url}/tables", accept="text/html")
    assert status == 303  # a browser goes to Airflow's login and comes back after it
    assert headers["Location"].startswith("/auth/login?next=")
    assert urllib.parse.unquote(headers["Location"]).endswith(f"{url}/tables")
    for path in ("/tables", "/snapshots", "/features", "/ingest", "/data-docs/index.html"):
        assert request(url + path)[0] == 401, path
    first, second = snapshots(server)
    form = {"to": first.id, "expected_latest": second.id, "confirm": "yes"}
    assert request(f"{url}/snapshots/training_samples/rollback", data=form)[0] == 401
    assert request(f"{url}/tables", token="not-a-jwt")[0] == 403


def test_a_viewer_may_look_but_not_roll_back(server):
    from reclake.snapshots import latest_id

    url, viewer = server.url + VIEW, server.token("viewer")
    status, _, page = request(f"{url}/tables", token=viewer)
    assert status == 200 and "<h1>Tables</h1>" in page
    first, second = snapshots(server)
    form = {"to": first.id, "expected_latest": second.id, "confirm": "yes"}
    status, _, page = request(f"{url}/snapshots/training_samples/rollback", token=viewer, data=form)
    assert status == 403 and "Forbidden" in page
    assert request(f"{url}/snapshots/training_samples/rollback", token=viewer)[0] == 403
    assert latest_id(server.settings, "training_samples") == second.id


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    """Chromium, logged in as admin through Airflow's login form."""
    if chromium_binary() is None:
        pytest.fail("chromium is not installed: run scripts/setup.sh (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    print(f"\nui e2e: screenshots in {ARTIFACTS}")
    profile = tmp_path_factory.mktemp("chromium")
    chrome = Chromium(profile / "profile", profile / "chromium.log")
    try:
        # The view sends an anonymous browser to the login page, which sends it back.
        chrome.goto(f"{server.url}{VIEW}/tables", until="document.querySelector('input')")
        assert "/auth/login" in chrome.url()
        chrome.screenshot(ARTIFACTS / "00-login.png")
        chrome.type_into("input[name=username]", "admin")
        chrome.type_into("input[name=password]", server.passwords["admin"])
        chrome.click("button[type=submit]")
        chrome.wait_for(f"location.pathname === '{VIEW}/tables'")
        yield chrome
    finally:
        chrome.close()


def show(chrome: Chromium, server: Server, path: str, shot: str) -> str:
    """Open a page of the view, keep its screenshot, return its DOM."""
    chrome.goto(server.url + path, until="document.querySelector('main')")
    chrome.screenshot(ARTIFACTS / f"{shot}.png")
    return chrome.dom()


def cells(page: str, cls: str) -> list[list[str]]:
    """The text of every body row of the table with this class."""
    body = re.search(rf"<table class=\"{cls}\">.*?<tbody>(.*?)</tbody>", page, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_tables_page(browser, server):
    page = show(browser, server, f"{VIEW}/tables", "01-tables")
    rows = {r[0]: r for r in cells(page, "health")}
    for name in ("events", "training_samples", "quarantine_events"):
        dt = open_table(table(name).uri(server.settings))
        # version and rows straight from the Delta table (delta-rs scan, not the log stats)
        assert rows[name][1:3] == [str(dt.version()), f"{dt.to_pyarrow_dataset().count_rows():,}"]
    assert rows["events"][6] != "-"  # last optimize: the one the fixture ran
    last_sampled = iso(FIRST + (SAMPLED - 1) * HOUR)
    assert dict(cells(page, "freshness")) == {
        "ingested": iso(FIRST + (ARRIVED - 1) * HOUR),
        "labeled": last_sampled,
        "sampled": last_sampled,
    }
    reasons = Counter()
    for hour in server.lake["ingest"].hours:
        reasons.update(hour.quarantine_reasons)
    shown = {r[0]: int(r[1].replace(",", "")) for r in cells(page, "quarantine")}
    assert shown == dict(reasons) and sum(shown.values()) > 0


def test_snapshot_pages(browser, server):
    from reclake.snapshots import read_arrow_dataset

    first, second = snapshots(server)
    page = show(browser, server, f"{VIEW}/snapshots", "02-snapshots")
    listing = {r[0]: r for r in cells(page, "snapshots")}
    assert set(listing) == {first.id, second.id}
    assert listing[second.id][3] == f"{second.row_count:,}" and listing[second.id][7] == "latest"
    assert listing[first.id][7] == ""
    assert listing[first.id][8:10] == listing[second.id][8:10] == ["passed", "passed"]
    # the DAG runs that published them
    assert listing[first.id][10].startswith(f"{SNAPSHOT} / manual__")
    assert listing[second.id][10].startswith(f"{BACKFILL} / manual__")

    page = show(browser, server, f"{VIEW}/snapshots/{second.id}", "03-snapshot")
    facts = dict(r[:2] for r in cells(page, "facts"))
    assert facts["rows"] == f"{read_arrow_dataset(second).count_rows():,}"
    interval = f"[{iso(FIRST + HOUR)}, {iso(FIRST + 2 * HOUR)})"
    assert facts["interval"] == interval and facts["latest"] == "yes"
    validation = dict(cells(page, "validation"))
    assert validation["outcome"] == "passed" and validation["report"] == "Data Docs"
    audits = cells(page, "audits")
    # rows drawn: the sample asked for, or every row of the interval when it holds fewer
    drawn = second.audit["rows_checked"]
    assert [a[1:3] for a in audits] == [["passed", f"{drawn:,}"]]
    assert 0 < drawn < second.row_count  # the interval is one of the version's two hours
    assert len(cells(page, "schema")) == len(json.loads(second.schema)["fields"])

    browser.click("table.validation a")  # the Data Docs of the lake, behind the same login
    browser.wait_for(f"location.pathname.startsWith('{VIEW}/data-docs/')")
    browser.screenshot(ARTIFACTS / "04-data-docs.png")
    assert "training_samples" in browser.dom()

    page = show(browser, server, f"{VIEW}/snapshots/diff?a={first.id}&b={second.id}", "05-diff")
    summary = {r[0]: r[1:] for r in cells(page, "diff-summary")}
    assert summary["rows"] == [f"{first.row_count:,}", f"{second.row_count:,}"]
    assert f"rows +{second.row_count - first.row_count:,};" in page


def test_features_page(browser, server):
    from reclake.snapshots.profile import feature_columns

    first, second = snapshots(server)
    page = show(browser, server, f"{VIEW}/features", "06-features")
    assert f"{second.id} ({second.row_count:,} rows) against {first.id}" in page
    features = [r[0] for r in cells(page, "features")]
    assert features == feature_columns(second) and len(features) > 20
    assert page.count("<svg") == 2 * len(features)  # distribution and null rate, each
    assert page.count('class="bar baseline"') >= len(features)


def test_ingest_page(browser, server):
    page = show(browser, server, f"{VIEW}/ingest?days=2", "07-ingest")
    hours = server.lake["ingest"].hours
    assert page.count("<polyline") == 4 and page.count("<circle") == 4 * len(hours)
    total = cells(page, "ingest")[-1]
    assert total[0] == "total" and total[1] == f"{server.lake['generated'].total.lines:,}"
    assert total[2] == f"{sum(h.bronze_rows for h in hours):,}"


def test_the_airflow_ui_lists_the_view(browser, server):
    browser.goto(f"{server.url}/plugin/reclake", until="document.querySelector('iframe')")
    frame = "document.querySelector('iframe')"
    assert browser.evaluate(f"{frame}.getAttribute('src')") == f"{VIEW}/tables"
    browser.wait_for(f"{frame}.contentDocument?.querySelector('table.health')")
    # the navigation's entry for the view
    assert browser.evaluate("!!document.querySelector('a[href$=\"/plugin/reclake\"]')")
    browser.screenshot(ARTIFACTS / "08-airflow-ui.png")


def test_rollback_needs_a_confirmation(browser, server):
    from reclake.snapshots import latest_id

    first, second = snapshots(server)
    page = show(browser, server, f"{VIEW}/snapshots/training_samples/rollback", "09-rollback")
    assert [r[1] for r in cells(page, "rollback")] == [second.id, first.id]
    assert latest_id(server.settings, "training_samples") == second.id  # nothing moved yet
    browser.click("form button[type=submit]")
    try:
        browser.wait_for("document.querySelector('p.done')")
    except BrowserError:
        browser.screenshot(ARTIFACTS / "10-rollback-failed.png")
        raise
    browser.screenshot(ARTIFACTS / "10-rolled-back.png")
    assert latest_id(server.settings, "training_samples") == first.id
    # The confirmation is spent: posting it again finds latest moved and changes nothing.
    form = {"to": first.id, "expected_latest": second.id, "confirm": "yes"}
    url = f"{server.url}{VIEW}/snapshots/training_samples/rollback"
    assert request(url, token=server.token(), data=form)[0] == 409
    unconfirmed = {**form, "expected_latest": first.id, "confirm": ""}
    assert request(url, token=server.token(), data=unconfirmed)[0] == 400


# --- runs that cannot succeed, and stopping --------------------------------------------------


@pytest.mark.parametrize(
    "conf",
    [
        {
            "start": param_hour(FIRST + 2 * HOUR),
            "end": param_hour(FIRST + 5 * HOUR),
            "wait_minutes": 0.5,
        },
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
