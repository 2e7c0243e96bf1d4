"""The registry fold: commit-ordered events -> state, with its invariants enforced."""

from __future__ import annotations

import pytest

from reclake.snapshots.state import EXPIRE, MIGRATE, PIN, PUBLISH, SET_LATEST, UNPIN, Event
from reclake.snapshots.state import fold as fold_in

LAKE = "file:///lake"


def fold(events):
    return fold_in(events, LAKE)


def record(sid: str, version: int, validation: str = "ok", table: str = "t", pinned=False):
    """A minimal publish record (only what the fold and from_record need)."""
    return {
        "id": sid,
        "table": table,
        "table_path": "t",
        "version": version,
        "files": [
            {
                "path": f"{sid}.parquet",
                "size": 1,
                "partition_values": {},
                "num_records": 1,
            }
        ],
        "row_count": 1,
        "schema": "{}",
        "partition_by": [],
        "interval_start": None,
        "interval_end": None,
        "validation_id": validation,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": None,
        "pinned": pinned,
    }


def published(sid, version, **kw):
    return [
        Event(
            PUBLISH,
            kw.get("table", "t"),
            sid,
            "2026-01-01T00:00:00Z",
            record=record(sid, version, **kw),
        ),
        Event(SET_LATEST, kw.get("table", "t"), sid, "2026-01-01T00:00:00Z"),
    ]


def ev(kind, sid, table="t"):
    return Event(kind, table, sid, "2026-01-02T00:00:00Z")


def test_publish_order_and_latest_follow_commit_order():
    state = fold(published("a", 0) + published("b", 1) + [ev(SET_LATEST, "a")])
    assert [s.id for s in state.snapshots("t")] == ["a", "b"]
    assert state.latest == {"t": "a"}


def test_duplicate_publish_of_same_key_becomes_alias_of_first():
    # Two racing publishers of (t, v1, ok): the first commit wins, the second id is an alias.
    state = fold(published("first", 1) + published("second", 1))
    assert list(state.records) == ["first"]
    assert state.canonical("second") == "first"
    assert state.latest == {"t": "first"}
    assert state.snapshot("second").id == "first"


@pytest.mark.parametrize(
    ("events", "expired"),
    [
        # plain expiry of a non-latest snapshot
        ([ev(EXPIRE, "a")], {"a"}),
        # latest cannot be expired
        ([ev(EXPIRE, "b")], set()),
        # pinned cannot be expired; after unpin it can
        ([ev(PIN, "a"), ev(EXPIRE, "a")], set()),
        ([ev(PIN, "a"), ev(UNPIN, "a"), ev(EXPIRE, "a")], {"a"}),
        # a rollback committed before the expire protects the target
        ([ev(SET_LATEST, "a"), ev(EXPIRE, "a")], set()),
        # expiry for an unknown id is ignored
        ([ev(EXPIRE, "zzz")], set()),
    ],
)
def test_expire_respects_protection(events, expired):
    state = fold(published("a", 0) + published("b", 1) + events)
    assert set(state.expired_at) == expired


def test_latest_never_moves_to_an_expired_snapshot():
    # Rollback racing with expire: expire committed first, so the latest move is ignored.
    state = fold(published("a", 0) + published("b", 1) + [ev(EXPIRE, "a"), ev(SET_LATEST, "a")])
    assert state.latest == {"t": "b"}
    assert state.snapshot("a").status == "expired"
    assert state.snapshot("b").status == "live"


def test_pinned_at_publish_and_pin_of_expired_is_ignored():
    state = fold(published("a", 0, pinned=True) + published("b", 1) + published("c", 2))
    assert state.snapshot("a").pinned is True
    state = fold(published("a", 0) + published("b", 1) + [ev(EXPIRE, "a"), ev(PIN, "a")])
    assert state.snapshot("a").pinned is False


def test_tables_are_independent():
    state = fold(published("a", 0) + published("x", 0, table="u"))
    assert state.latest == {"t": "a", "u": "x"}
    assert [s.id for s in state.snapshots("u")] == ["x"]


def absolute(sid: str, version: int, root: str = "file:///old/lake"):
    """A publish record as written before paths were relative: absolute URIs under `root`."""
    rec = record(sid, version)
    rec.pop("table_path")
    rec["table_uri"] = f"{root}/t"
    rec["files"] = [{**f, "path": f"{root}/t/{f['path']}"} for f in rec["files"]]
    return rec


def test_migrate_event_restates_an_absolute_record_and_the_rest_is_unchanged():
    old = [Event(PUBLISH, "t", "a", "2026-01-01T00:00:00Z", record=absolute("a", 0, LAKE))]
    restated = Event(MIGRATE, "t", "a", "2026-01-03T00:00:00Z", record=record("a", 0))
    before, after = fold(old), fold([*old, restated])
    assert before.records["a"]["table_uri"] == "file:///lake/t"
    assert after.records["a"] == record("a", 0)
    assert before.snapshot("a") == after.snapshot("a")
    assert after.snapshot("a").files[0].path == "file:///lake/t/a.parquet"


@pytest.mark.parametrize(
    "restated",
    [
        record("a", 1),  # another version: not the same snapshot
        record("a", 0, validation="other"),  # another validation
        absolute("a", 0, "file:///elsewhere"),  # not relative: nothing to gain
    ],
)
def test_migrate_event_for_another_record_is_ignored(restated):
    old = [Event(PUBLISH, "t", "a", "2026-01-01T00:00:00Z", record=absolute("a", 0, LAKE))]
    state = fold([*old, Event(MIGRATE, "t", "a", "2026-01-03T00:00:00Z", record=restated)])
    assert state.records["a"] == absolute("a", 0, LAKE)
