"""Retention policy: which live snapshots expire."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reclake.snapshots.model import Snapshot
from reclake.snapshots.policy import select_expired

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def snap(sid: str, day: int, expires_day: int | None = None, status: str = "live") -> Snapshot:
    return Snapshot(
        id=sid,
        table="t",
        table_uri="file:///t",
        version=day,
        files=(),
        row_count=0,
        schema="{}",
        partition_by=(),
        interval_start=None,
        interval_end=None,
        validation_id="v",
        created_at=f"2026-01-{day:02d}T00:00:00Z",
        expires_at=None if expires_day is None else f"2026-01-{expires_day:02d}T00:00:00Z",
        pinned=False,
        status=status,
    )


SNAPS = [snap("d1", 1), snap("d5", 5), snap("d8", 8), snap("d9", 9)]


@pytest.mark.parametrize(
    ("keep_last", "older_than_days", "protected", "expected"),
    [
        # keep the newest 2, no age condition
        (2, None, set(), ["d1", "d5"]),
        # keep everything
        (10, None, set(), []),
        # keep none: all unprotected go
        (0, None, {"d9"}, ["d1", "d5", "d8"]),
        # beyond keep_last AND older than 3 days (d8 is 2 days old: stays)
        (1, 3, set(), ["d1", "d5"]),
        # protected ones never expire
        (1, None, {"d1", "d9"}, ["d5", "d8"]),
    ],
)
def test_keep_last_and_age(keep_last, older_than_days, protected, expected):
    chosen = select_expired(
        SNAPS,
        lambda s: s.id in protected,
        keep_last=keep_last,
        older_than_days=older_than_days,
        now=NOW,
    )
    assert [s.id for s in chosen] == expected


def test_past_expires_at_expires_even_within_keep_last():
    snaps = [snap("old", 1, expires_day=9), snap("new", 2, expires_day=11)]
    chosen = select_expired(snaps, lambda s: False, keep_last=5, older_than_days=None, now=NOW)
    assert [s.id for s in chosen] == ["old"]


def test_already_expired_are_not_counted_or_returned():
    snaps = [snap("a", 1), snap("b", 2, status="expired"), snap("c", 3)]
    chosen = select_expired(snaps, lambda s: False, keep_last=1, older_than_days=None, now=NOW)
    assert [s.id for s in chosen] == ["a"]


def test_negative_keep_last_is_rejected():
    with pytest.raises(ValueError, match="keep_last must be >= 0"):
        select_expired(SNAPS, lambda s: False, keep_last=-1, older_than_days=None, now=NOW)
