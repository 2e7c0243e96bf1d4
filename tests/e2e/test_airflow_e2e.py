"""Airflow end to end: the settings bootstrap, and real `airflow dags test` runs of
reclake_backfill, reclake_hourly and reclake_training_snapshot over generated landing data.

Slow (minutes on 2 cores): marked e2e. The tests assert exactly which tasks ran and which
were skipped, and what landed in the lake.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from reclake.config import Settings
from reclake.timeutil import parse_utc

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

HOURLY_SPARK_TASKS = (
    "ingest_events",
    "load_dims",
    "build_tiles",
    "label_impressions",
    "build_training_samples",
    "validate_training_samples",
)


def changes(report: str) -> dict[str, str]:
    """'kind name action' lines of reclake.airflow_settings -> {'kind/name': action}."""
    rows = [line.split() for line in report.splitlines() if line.strip()]
    return {f"{kind}/{name}": action for kind, name, action in rows}


def test_settings_apply_is_idempotent(airflow_home, tmp_path):
    expected = {"connection/spark_default", "pool/spark", "pool/training"}
    assert changes(airflow_home.first_apply) == dict.fromkeys(expected, "created")
    assert changes(airflow_home.apply_settings()) == dict.fromkeys(expected, "unchanged")

    # A changed file updates only what changed; re-applying the original restores it.
    text = (REPO / "airflow_settings.yaml").read_text()
    changed = tmp_path / "airflow_settings.yaml"
    changed.write_text(
        text.replace(
            "pool_slot: 1\n      pool_description: spark-submit",
            "pool_slot: 3\n      pool_description: spark-submit",
        )
    )
    assert changes(airflow_home.apply_settings(changed)) == {
        "connection/spark_default": "unchanged",
        "pool/spark": "updated",
        "pool/training": "unchanged",
    }
    pools = json.loads(airflow_home.airflow("pools", "get", "spark", "-o", "json").stdout)
    assert [str(p["slots"]) for p in pools] == ["3"]  # the CLI prints slots as text
    assert changes(airflow_home.apply_settings())["pool/spark"] == "updated"

    conn = json.loads(
        airflow_home.airflow("connections", "get", "spark_default", "-o", "json").stdout
    )[0]
    assert (conn["conn_type"], conn["host"]) == ("spark", "local[2]")
    assert conn["extra_dejson"] == {"deploy-mode": "client", "spark-binary": "spark-submit"}


def task_states(home: Path, dag_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """(data interval start, end) -> {task_id: state} for every run of a DAG, from the DB."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT r.data_interval_start, r.data_interval_end, t.task_id, t.state "
            "FROM dag_run r JOIN task_instance t ON t.run_id = r.run_id AND t.dag_id = r.dag_id "
            "WHERE r.dag_id = ?",
            (dag_id,),
        ).fetchall()
    runs: dict[tuple[str, str], dict[str, str]] = {}
    for start, end, task_id, state in rows:
        runs.setdefault((start[:16], end[:16]), {})[task_id] = state
    return runs


def latest_run_states(home: Path, dag_id: str) -> dict[str, str]:
    """{task_id: state} of the most recently created run of a DAG, from the DB."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchall()
    return dict(rows)


def table_rows(settings: Settings, path: str) -> list[dict]:
    """All rows of a Delta table read with delta-rs, in a stable order."""
    from deltalake import DeltaTable

    rows = DeltaTable(settings.table_uri(path)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_pipeline_runs_end_to_end_through_airflow(airflow_home):
    """Two arrival hours loaded by reclake_backfill, the next one by reclake_hourly, then the
    snapshot run over every final hour (no allowed lateness, so an hour is final one hour
    after it arrived)."""
    from reclake.demo import run_pipeline
    from reclake.generator import GeneratorConfig
    from reclake.orchestration import label_lag_hours
    from reclake.snapshots import read_arrow_dataset, resolve

    settings = airflow_home.settings
    assert label_lag_hours(settings) == 1
    config = GeneratorConfig(events_per_hour=300, n_users=40, n_items=25, files_per_hour=1)
    began = time.monotonic()
    (start, end), report = run_pipeline(
        airflow_home.local, settings, "2026-11-20T00:00Z", 1, config, history_hours=2
    )
    print(f"pipeline through airflow: {time.monotonic() - began:.0f} s")
    assert (start.hour, end.hour) == (0, 2)  # 3 arrival hours make hours 00:00, 01:00 final

    # The backfill ran every stage (hour 00:00 labeled and sampled) and no publish chain.
    backfill = latest_run_states(airflow_home.home, "reclake_backfill")
    publish_chain = (
        "pin_version",
        "validate_training_samples",
        "audit_training_samples",
        "publish_snapshot",
        "announce_snapshot",
    )
    gates = [f"want_{step}" for step in ("ingest", "dims", "tiles", "labels", "samples")]
    ran = ("plan", *gates, *HOURLY_SPARK_TASKS[:-1])
    assert {t: backfill[t] for t in ran} == dict.fromkeys(ran, "success"), backfill
    assert {backfill[t] for t in ("want_publish", *publish_chain)} == {"skipped"}, backfill
    # The hourly run of arrival hour 02:00 continued from there: it labeled hour 01:00.
    runs = task_states(airflow_home.home, "reclake_hourly")
    assert sorted(runs) == [("2026-11-20 02:00", "2026-11-20 03:00")]
    for states in runs.values():
        for task in HOURLY_SPARK_TASKS:
            assert states[task] == "success", (task, states)
    snapshot_runs = task_states(airflow_home.home, "reclake_training_snapshot")
    assert [set(s.values()) for s in snapshot_runs.values()] == [{"success"}]

    # bronze holds exactly the generator's distinct valid events of each arrival hour, once.
    bronze = table_rows(settings, "bronze/events")
    per_hour: dict[str, int] = {}
    for row in bronze:
        key = row["arrival_hour"].strftime("%Y-%m-%dT%H")
        per_hour[key] = per_hour.get(key, 0) + 1
    assert per_hour == {h.arrival_hour[:13]: h.counts.valid_events for h in report.hours}
    assert len({row["event_id"] for row in bronze}) == len(bronze)

    # every on-time impression of hours 00:00 and 01:00 is labeled and becomes one sample
    impressions = {
        r["event_id"]
        for r in bronze
        if r["event_type"] == "impression"
        and r["event_hour"].hour in (0, 1)
        and not r["beyond_lateness"]
    }
    silver = table_rows(settings, "silver/impressions_labeled")
    gold = table_rows(settings, "gold/training_samples")
    assert impressions and {r["event_id"] for r in silver} == impressions
    assert sorted(r["event_id"] for r in gold) == sorted(impressions)

    # the published snapshot is exactly that hour of samples, and it passed the gate
    snap = resolve(settings, "training_samples@latest")
    assert (snap.interval_start[:13], snap.interval_end[:13]) == ("2026-11-20T00", "2026-11-20T02")
    assert snap.row_count == len(gold)
    published = read_arrow_dataset(snap).to_table(columns=["event_id"]).column(0).to_pylist()
    assert sorted(published) == sorted(impressions)


TABLES = (
    "bronze/events",
    "quarantine/events",
    "silver/impressions_labeled",
    "gold/training_samples",
)


@pytest.mark.slow
def test_rerunning_an_hourly_run_changes_no_table(airflow_home):
    """Re-running the hour that labels 01:00 (after the pipeline test) leaves every table as
    it was. Slow (six more spark-submits): each job's idempotency is also tested on its own."""
    settings = airflow_home.settings
    before = {p: table_rows(settings, p) for p in TABLES}
    assert before["gold/training_samples"], (
        "run after test_pipeline_runs_end_to_end_through_airflow"
    )
    # Its gate is marked done: the snapshot just published (hours 00:00-01:00) is now the
    # drift baseline, and the lake's first hour has no history at all, so one tiny hour's
    # distribution drifts from it; this re-run is about the lake's content.
    airflow_home.dags_test(
        "reclake_hourly",
        "2026-11-20T03:00:00+00:00",
        mark_success="^validate_training_samples$",
    )
    for path, rows in before.items():
        assert table_rows(settings, path) == rows, path


def test_a_failing_gate_inside_the_dag_leaves_latest(airflow_home):
    """A bad row in gold (after the pipeline test) fails the gate inside the snapshot DAG:
    publish never runs, latest stays."""
    from deltalake import DeltaTable, write_deltalake

    from reclake.demo import publish_snapshot
    from reclake.snapshots import resolve

    settings = airflow_home.settings
    snap = resolve(settings, "training_samples@latest")
    start, end = (parse_utc(t) for t in (snap.interval_start, snap.interval_end))
    gold_uri = settings.table_uri("gold/training_samples")
    duplicate = DeltaTable(gold_uri).to_pyarrow_table().slice(0, 1)
    write_deltalake(gold_uri, duplicate, mode="append")
    failed = publish_snapshot(airflow_home.local, start, end, check=False)
    newest = latest_run_states(airflow_home.home, "reclake_training_snapshot")
    assert newest["validate_training_samples"] == "failed", failed.stdout[-2000:]
    assert newest["publish_snapshot"] == "upstream_failed"
    assert resolve(settings, "training_samples@latest").id == snap.id
