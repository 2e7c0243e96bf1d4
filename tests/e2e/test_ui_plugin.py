"""reclake's view in the Airflow UI, end to end: a real Airflow API server (with plugins/)
over a small real lake built by the library's jobs, browsed by headless Chromium.

The lake: a day of generated history plus 5 arrival hours, ingested, labeled and sampled;
two snapshots of training_samples published through the validation gate (the second one
also audited); one optimize of bronze. While Spark builds it, Airflow migrates its database
and starts its API server (only the API server: the view needs nothing else).

Chromium logs in through Airflow's own login form, opens every page of the view and the
Airflow UI's navigation entry, and the test checks each page for the lake's real figures;
screenshots are kept in artifacts/ui/ (git-ignored). Anonymous and viewer requests are
refused, and the rollback needs the admin's confirmation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from reclake.config import Settings
from reclake.local_airflow import VENV_BIN, airflow_env
from reclake.snapshots.deltars import open_table
from reclake.tables import table
from reclake.timeutil import HOUR, iso, parse_utc
from tests.e2e.browser import BrowserError, Chromium, chromium_binary

# Slow for now: its lake takes ~5 min to build (a day of history, two validations, an audit);
# `make test-slow` runs it until the lake is made small enough for CI.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "ui"
START = parse_utc("2026-11-20T00:00Z")  # first hour sampled
HISTORY = timedelta(hours=24)  # arrivals before it: 24h windows are full from START on
END = START + 5 * HOUR  # arrival hours [START - HISTORY, END)
LABELED_END = END - HOUR  # lag 1 h: no allowed lateness, 30 min window
VIEW = "/reclake"
USERS = "admin:admin,viewer:viewer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_lake(spark, settings: Settings) -> dict:
    """The lake the view shows, built by the library's real jobs; returns what they report."""
    from reclake.features.dims import load_dims
    from reclake.features.labels import label_impressions
    from reclake.features.samples import build_training_samples
    from reclake.features.tiles import build_tiles
    from reclake.generator import GeneratorConfig, generate
    from reclake.ingest import ingest_events
    from reclake.maintenance.optimize import optimize_table
    from reclake.quality.audit import audit_version
    from reclake.quality.validate import validate_table
    from reclake.snapshots import publish

    config = GeneratorConfig(events_per_hour=150, n_users=40, n_items=30).with_fault_scale(5)
    generated = generate(settings, START - HISTORY, END, config)
    ingest = ingest_events(spark, settings, START - HISTORY, END, chunk_hours=48)
    load_dims(spark, settings)
    build_tiles(spark, settings, START - HISTORY, END)
    label_impressions(spark, settings, START, LABELED_END)
    snaps, sampled = [], START
    for end in (START + 2 * HOUR, LABELED_END):
        build_training_samples(spark, settings, sampled, end)
        sampled = end
        result = validate_table(spark, settings, "training_samples", start=START, end=end)
        assert result.success, result.failures
        audit = None
        if end == LABELED_END:
            audit = audit_version(
                spark,
                settings,
                "training_samples",
                result.version,
                start=START,
                end=end,
                sample_size=200,
                validation_id=result.id,
            )
            assert audit.success, audit.mismatches
        interval = (iso(START), iso(end))
        snaps.append(
            publish(
                settings,
                "training_samples",
                result.version,
                result.id,
                interval=interval,
                audit_id=audit.id if audit else None,
            )
        )
    optimize_table(spark, settings, "events")
    return {"generated": generated, "ingest": ingest, "snapshots": snaps}


def suites_without_drift(folder: Path) -> Path:
    """A copy of the expectation suites with training_samples' drift check off: the test's
    generated traffic falls over its first hours (the generator's daily cycle), so the second
    snapshot's 24h features drift from the first's by design, not by a defect."""
    shutil.copytree(Settings().expectations_dir, folder)
    suite = json.loads((folder / "training_samples.json").read_text())
    suite["checks"]["distribution_drift"]["enabled"] = False
    (folder / "training_samples.json").write_text(json.dumps(suite))
    return folder


@pytest.fixture(scope="module")
def server(spark, tmp_path_factory):
    """An Airflow API server with plugins/ over the lake, started while the lake is built."""
    root = tmp_path_factory.mktemp("ui")
    home, port = root / "airflow", free_port()
    settings = Settings(
        lake_root=(root / "lake").as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=2,
        allowed_lateness_hours=0,
        expectations_dir=suites_without_drift(root / "expectations"),
    )
    env = airflow_env(home, settings.lake_root)
    url = f"http://127.0.0.1:{port}"
    env.update(
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple."
        "simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=USERS,
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=url,
        AIRFLOW__API__WORKERS="1",
        RECLAKE_ALLOWED_LATENESS_HOURS="0",
    )
    home.mkdir()
    airflow = VENV_BIN / "airflow"
    log = (home / "api-server.log").open("wb")
    began = time.monotonic()
    # Its own session, so teardown ends exactly this server and its workers.
    proc = subprocess.Popen(
        ["bash", "-c", f"'{airflow}' db migrate && exec '{airflow}' api-server --port {port}"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        built = build_lake(spark, settings)
        lake_s = time.monotonic() - began
        wait_healthy(proc, url, home / "api-server.log")
        print(
            f"\nui e2e: lake built in {lake_s:.0f} s, API server up after "
            f"{time.monotonic() - began:.0f} s ({url}, log {home / 'api-server.log'})"
        )
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        yield {"url": url, "settings": settings, "passwords": passwords, **built}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"airflow API not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(url: str, *, token: str | None = None, data: dict | None = None, accept="*/*"):
    """(status, headers, body) of one HTTP request, redirects not followed."""
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers), timeout=60) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def token(server, user: str) -> str:
    """A bearer token from POST /auth/token (the REST API's way in)."""
    payload = json.dumps({"username": user, "password": server["passwords"][user]}).encode()
    req = urllib.request.Request(
        f"{server['url']}/auth/token", data=payload, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["access_token"]


def test_anonymous_requests_are_refused(server):
    url = server["url"] + VIEW
    status, headers, _ = request(f"{url}/tables", accept="text/html")
    assert status == 303  # a browser goes to Airflow's login and comes back after it
    assert headers["Location"].startswith("/auth/login?next=")
    assert urllib.parse.unquote(headers["Location"]).endswith(f"{url}/tables")
    for path in ("/tables", "/snapshots", "/features", "/ingest", "/data-docs/index.html"):
        assert request(url + path)[0] == 401, path
    latest = server["snapshots"][-1]
    form = {"to": server["snapshots"][0].id, "expected_latest": latest.id, "confirm": "yes"}
    assert request(f"{url}/snapshots/training_samples/rollback", data=form)[0] == 401
    assert request(f"{url}/tables", token="not-a-jwt")[0] == 403


def test_a_viewer_may_look_but_not_roll_back(server):
    from reclake.snapshots import latest_id

    url, viewer = server["url"] + VIEW, token(server, "viewer")
    status, _, page = request(f"{url}/tables", token=viewer)
    assert status == 200 and "<h1>Tables</h1>" in page
    first, second = server["snapshots"]
    form = {"to": first.id, "expected_latest": second.id, "confirm": "yes"}
    status, _, page = request(f"{url}/snapshots/training_samples/rollback", token=viewer, data=form)
    assert status == 403 and "Forbidden" in page
    assert request(f"{url}/snapshots/training_samples/rollback", token=viewer)[0] == 403
    assert latest_id(server["settings"], "training_samples") == second.id


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
        chrome.goto(f"{server['url']}{VIEW}/tables", until="document.querySelector('input')")
        assert "/auth/login" in chrome.url()
        chrome.screenshot(ARTIFACTS / "00-login.png")
        chrome.type_into("input[name=username]", "admin")
        chrome.type_into("input[name=password]", server["passwords"]["admin"])
        chrome.click("button[type=submit]")
        chrome.wait_for(f"location.pathname === '{VIEW}/tables'")
        yield chrome
    finally:
        chrome.close()


def show(
    chrome: Chromium, server, path: str, shot: str, until: str = "document.querySelector('main')"
) -> str:
    """Open a page of the view, keep its screenshot, return its DOM."""
    chrome.goto(server["url"] + path, until=until)
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
    settings = server["settings"]
    rows = {r[0]: r for r in cells(page, "health")}
    for name in ("events", "training_samples", "quarantine_events"):
        dt = open_table(table(name).uri(settings))
        # version and rows straight from the Delta table (delta-rs scan, not the log stats)
        assert rows[name][1:3] == [str(dt.version()), f"{dt.to_pyarrow_dataset().count_rows():,}"]
    assert rows["events"][6] != "-"  # last optimize: the one the fixture ran
    fresh = dict(cells(page, "freshness"))
    last = iso(END - HOUR)
    assert fresh == {
        "ingested": last,
        "labeled": iso(LABELED_END - HOUR),
        "sampled": iso(LABELED_END - HOUR),
    }
    reasons = Counter()
    for hour in server["ingest"].hours:
        reasons.update(hour.quarantine_reasons)
    shown = {r[0]: int(r[1].replace(",", "")) for r in cells(page, "quarantine")}
    assert shown == dict(reasons) and sum(shown.values()) > 0


def test_snapshot_pages(browser, server):
    first, second = server["snapshots"]
    page = show(browser, server, f"{VIEW}/snapshots", "02-snapshots")
    listing = {r[0]: r for r in cells(page, "snapshots")}
    assert set(listing) == {first.id, second.id}
    assert listing[second.id][3] == f"{second.row_count:,}" and listing[second.id][7] == "latest"
    assert listing[first.id][7] == "" and listing[second.id][8:10] == ["passed", "passed"]
    assert first.row_count < second.row_count

    page = show(browser, server, f"{VIEW}/snapshots/{second.id}", "03-snapshot")
    facts = dict(r[:2] for r in cells(page, "facts"))
    from reclake.snapshots import read_arrow_dataset

    assert facts["rows"] == f"{read_arrow_dataset(second).count_rows():,}"
    assert facts["interval"] == f"[{iso(START)}, {iso(LABELED_END)})" and facts["latest"] == "yes"
    validation = dict(cells(page, "validation"))
    assert validation["outcome"] == "passed" and validation["report"] == "Data Docs"
    audits = cells(page, "audits")
    # rows drawn: the sample asked for, or every row when the version holds fewer
    assert [a[1:3] for a in audits] == [["passed", f"{min(200, second.row_count):,}"]]
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
    first, second = server["snapshots"]
    page = show(browser, server, f"{VIEW}/features", "06-features")
    assert f"{second.id} ({second.row_count:,} rows) against {first.id}" in page
    from reclake.snapshots.profile import feature_columns

    features = [r[0] for r in cells(page, "features")]
    assert features == feature_columns(second) and len(features) > 20
    assert page.count("<svg") == 2 * len(features)  # distribution and null rate, each
    assert page.count('class="bar baseline"') >= len(features)


def test_ingest_page(browser, server):
    page = show(browser, server, f"{VIEW}/ingest?days=2", "07-ingest")
    hours = server["ingest"].hours
    assert page.count("<polyline") == 4 and page.count("<circle") == 4 * len(hours)
    total = cells(page, "ingest")[-1]
    assert total[0] == "total" and total[1] == f"{server['generated'].total.lines:,}"
    assert total[2] == f"{sum(h.bronze_rows for h in hours):,}"


def test_the_airflow_ui_lists_the_view(browser, server):
    browser.goto(f"{server['url']}/plugin/reclake", until="document.querySelector('iframe')")
    frame = "document.querySelector('iframe')"
    assert browser.evaluate(f"{frame}.getAttribute('src')") == f"{VIEW}/tables"
    browser.wait_for(f"{frame}.contentDocument?.querySelector('table.health')")
    # the navigation's entry for the view
    assert browser.evaluate("!!document.querySelector('a[href$=\"/plugin/reclake\"]')")
    browser.screenshot(ARTIFACTS / "08-airflow-ui.png")


def test_rollback_needs_a_confirmation(browser, server):
    from reclake.snapshots import latest_id

    first, second = server["snapshots"]
    page = show(browser, server, f"{VIEW}/snapshots/training_samples/rollback", "09-rollback")
    assert [r[1] for r in cells(page, "rollback")] == [second.id, first.id]
    assert latest_id(server["settings"], "training_samples") == second.id  # nothing moved yet
    browser.click("form button[type=submit]")
    try:
        browser.wait_for("document.querySelector('p.done')")
    except BrowserError:
        browser.screenshot(ARTIFACTS / "10-rollback-failed.png")
        raise
    browser.screenshot(ARTIFACTS / "10-rolled-back.png")
    assert latest_id(server["settings"], "training_samples") == first.id
    # The confirmation is spent: posting it again finds latest moved and changes nothing.
    form = {"to": first.id, "expected_latest": second.id, "confirm": "yes"}
    url = f"{server['url']}{VIEW}/snapshots/training_samples/rollback"
    assert request(url, token=token(server, "admin"), data=form)[0] == 409
    unconfirmed = {**form, "expected_latest": first.id, "confirm": ""}
    assert request(url, token=token(server, "admin"), data=unconfirmed)[0] == 400
