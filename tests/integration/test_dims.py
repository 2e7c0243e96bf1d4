"""load_dims: validation with reasons, latest-wins dedupe, idempotent full reload, delta-rs."""

from __future__ import annotations

import gzip
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclake import contract, io, lakefs
from reclake.config import PROJECT_ROOT
from reclake.features.dims import DimsError, dims_up_to_date, load_dims, load_summary
from reclake.tables import table

pytestmark = pytest.mark.integration
LOAD_DIMS_JOB = PROJECT_ROOT / "jobs" / "load_dims.py"


def _user(uid, country="US", device="ios", age="18-24", signup="2026-01-01T00:00:00Z"):
    return json.dumps(
        {"user_id": uid, "country": country, "device": device, "age_bucket": age,
         "signup_time": signup}
    )  # fmt: skip


def _item(iid, duration=10000, created="2026-01-01T00:00:00Z", category="music"):
    return json.dumps(
        {"item_id": iid, "category": category, "duration_ms": duration, "creator_id": 7,
         "created_at": created}
    )  # fmt: skip


def _drop(settings, folder: str, name: str, lines: list[str]) -> Path:
    path = Path(lakefs.local_path(f"{settings.landing_uri}/{folder}")) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


USERS_1 = [
    _user(1),  # 1: superseded by line 7 (later signup_time)
    _user(2, device="android", signup="2026-01-02T00:00:00Z"),  # 2: tie, loses to the later file
    "not json",  # 3: malformed_json
    _user("3"),  # 4: id as a JSON string -> bad_type
    _user(4, device="tv"),  # 5: bad_value
    json.dumps({"user_id": 5, "country": "US", "device": "ios", "signup_time": "2026-01-01"}),
    _user(1, country="DE", signup="2026-02-01T00:00:00Z"),  # 7: latest for user 1
]
USERS_2 = [
    _user(2, country="FR", device="android", signup="2026-01-02T00:00:00Z"),  # tie -> wins
    _user(0),  # 2: bad_value (ids are >= 1)
    _user(6, signup="yesterday"),  # 3: bad_type
]
ITEMS = [
    _item(10, duration=10000, created="2026-01-01T00:00:00Z"),  # 1: latest for item 10
    _item(10, duration=5555, created="2025-12-01T00:00:00Z"),  # 2: older, later line: loses
    _item(11, duration=0),  # 3: bad_value
    _item(12, duration=1.5),  # 4: bad_type
    _item(13, duration=20000),  # 5
]

EXPECTED_QUARANTINE = [
    ("items", "dims/items/items-001.jsonl.gz", 3, "bad_value", "duration_ms: must be > 0"),
    ("items", "dims/items/items-001.jsonl.gz", 4, "bad_type", "duration_ms: not an integer"),
    (
        "users",
        "dims/users/users-001.jsonl.gz",
        3,
        "malformed_json",
        "not a JSON object with any field of the contract",
    ),
    ("users", "dims/users/users-001.jsonl.gz", 4, "bad_type", "user_id: not an integer"),
    (
        "users",
        "dims/users/users-001.jsonl.gz",
        5,
        "bad_value",
        "device: must be one of android|ios|web",
    ),
    ("users", "dims/users/users-001.jsonl.gz", 6, "missing_field", "age_bucket: missing"),
    ("users", "dims/users/users-002.jsonl.gz", 2, "bad_value", "user_id: must be >= 1"),
    ("users", "dims/users/users-002.jsonl.gz", 3, "bad_type", "signup_time: not an ISO-8601 time"),
]


def _write_drops(settings) -> dict[str, Path]:
    return {
        "users1": _drop(settings, contract.USERS_DROP, "users-001.jsonl.gz", USERS_1),
        "users2": _drop(settings, contract.USERS_DROP, "users-002.jsonl.gz", USERS_2),
        "items": _drop(settings, contract.ITEMS_DROP, "items-001.jsonl.gz", ITEMS),
    }


def _users(spark, settings):
    rows = io.read_table(spark, table("users"), settings).collect()
    return sorted(
        (r.user_id, r.country, r.device, r.signup_time.isoformat(), r.source_file) for r in rows
    )


def _quarantine(spark, settings):
    rows = io.read_table(spark, table("quarantine_dims"), settings).collect()
    return sorted((r.dim, r.source_file, r.line_number, r.reason, r.detail) for r in rows)


def test_load_dims_validates_dedupes_and_reloads_idempotently(spark, settings):
    drops = _write_drops(settings)

    first = load_dims(spark, settings)

    assert _users(spark, settings) == [
        (1, "DE", "ios", "2026-02-01T00:00:00", "dims/users/users-001.jsonl.gz"),
        (2, "FR", "android", "2026-01-02T00:00:00", "dims/users/users-002.jsonl.gz"),
    ]
    items = io.read_table(spark, table("items"), settings).collect()
    assert sorted((r.item_id, r.duration_ms, r.creator_id) for r in items) == [
        (10, 10000, 7),
        (13, 20000, 7),
    ]
    assert _quarantine(spark, settings) == EXPECTED_QUARANTINE
    # Counts reconcile: 10 user lines = 2 kept + 2 superseded + 6 quarantined; 5 item lines =
    # 2 kept + 1 superseded + 2 quarantined.
    assert (first["users"].rows, first["items"].rows, first["quarantine_dims"].rows) == (2, 2, 8)
    assert load_summary(settings)["superseded"] == {
        "users": {"superseded": 2, "conflicting_keys": 2},
        "items": {"superseded": 1, "conflicting_keys": 1},
    }

    # Same drop again: same content, new versions, nothing doubled.
    users_before = _users(spark, settings)
    second = load_dims(spark, settings)
    assert _users(spark, settings) == users_before
    assert _quarantine(spark, settings) == EXPECTED_QUARANTINE
    assert second["users"].version == first["users"].version + 1
    assert (second["users"].rows, second["items"].rows, second["quarantine_dims"].rows) == (2, 2, 8)

    # The drop is the complete truth: without file 2, user 2 falls back to file 1's record.
    drops["users2"].unlink()
    load_dims(spark, settings)
    assert [(u[0], u[1]) for u in _users(spark, settings)] == [(1, "DE"), (2, "US")]
    assert [q for q in _quarantine(spark, settings) if "users-002" in q[1]] == []

    # delta-rs reads the same rows.
    from deltalake import DeltaTable

    users_rs = DeltaTable(lakefs.local_path(table("users").uri(settings))).to_pyarrow_table()
    pairs = zip(users_rs["user_id"].to_pylist(), users_rs["country"].to_pylist(), strict=True)
    assert sorted(pairs) == [(1, "DE"), (2, "US")]


def test_all_bad_drop_fails_and_keeps_the_table(spark, settings):
    _write_drops(settings)
    load_dims(spark, settings)
    items_uri = lakefs.local_path(f"{settings.landing_uri}/{contract.ITEMS_DROP}")
    for path in Path(items_uri).iterdir():
        path.unlink()
    _drop(settings, contract.ITEMS_DROP, "items-002.jsonl.gz", [_item(20, duration=-1)])

    with pytest.raises(DimsError, match="items drop has no valid record"):
        load_dims(spark, settings)

    items = io.read_table(spark, table("items"), settings).collect()
    assert sorted(r.item_id for r in items) == [10, 13]
    bad = [q for q in _quarantine(spark, settings) if q[0] == "items"]
    assert bad == [
        ("items", "dims/items/items-002.jsonl.gz", 1, "bad_value", "duration_ms: must be > 0")
    ]


def test_missing_drop_is_a_clear_error(spark, settings):
    _drop(settings, contract.USERS_DROP, "users-001.jsonl.gz", [_user(1)])
    with pytest.raises(DimsError, match=r"no items drop: no \*\.jsonl\(\.gz\) files under"):
        load_dims(spark, settings)


def test_signup_time_is_utc(spark, settings):
    # An offset is converted to UTC; the stored value is the UTC wall time.
    _drop(
        settings, contract.USERS_DROP, "u.jsonl.gz", [_user(1, signup="2026-01-01T02:00:00+02:00")]
    )
    _drop(settings, contract.ITEMS_DROP, "i.jsonl.gz", [_item(1)])
    load_dims(spark, settings)
    row = io.read_table(spark, table("users"), settings).collect()[0]
    assert row.signup_time.replace(tzinfo=UTC) == datetime(2026, 1, 1, tzinfo=UTC)


def _load_job():
    spec = importlib.util.spec_from_file_location("load_dims_job", LOAD_DIMS_JOB)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


@pytest.mark.slow
def test_job_skips_an_unchanged_reload_and_reloads_on_any_change(
    spark, settings, monkeypatch, capsys
):
    drops = _write_drops(settings)
    assert dims_up_to_date(settings) is None  # never loaded
    first = load_dims(spark, settings)
    versions = {name: first[name].version for name in ("users", "items", "quarantine_dims")}
    assert dims_up_to_date(settings)["versions"] == versions

    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    job = _load_job()
    assert job.main([]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"skipped": "drops and tables unchanged", **versions}
    # --force reloads: every table gets a new version, and the record follows it.
    assert job.main(["--force"]) == 0
    forced = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert forced["users"]["version"] == versions["users"] + 1
    assert dims_up_to_date(settings)["versions"]["users"] == versions["users"] + 1

    # A changed drop file (same name) needs a reload, and the reload picks it up.
    _drop(settings, contract.USERS_DROP, drops["users2"].name, [*USERS_2, _user(9)])
    assert dims_up_to_date(settings) is None
    assert job.main([]) == 0
    assert "skipped" not in capsys.readouterr().out
    assert 9 in [u[0] for u in _users(spark, settings)]
    assert dims_up_to_date(settings) is not None

    # A table written by anything else (a new version) also needs a reload.
    io.replace_where(
        io.read_table(spark, table("items"), settings), table("items"), settings, "true"
    )
    assert dims_up_to_date(settings) is None
