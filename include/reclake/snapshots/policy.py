"""Which snapshots a retention policy expires (pure: decides, does not write)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from reclake.snapshots.model import Snapshot
from reclake.timeutil import parse_utc


def select_expired(
    snapshots: Sequence[Snapshot],
    is_protected: Callable[[Snapshot], bool],
    *,
    keep_last: int,
    older_than_days: float | None,
    now: datetime,
) -> list[Snapshot]:
    """Live snapshots of ONE table (publish order) that the policy expires.

    A snapshot expires when it is not protected (pinned, or `latest`) and either
    - its own expires_at has passed, or
    - it is not among the newest `keep_last` live snapshots and, when `older_than_days` is
      given, it was published more than that many days before `now`.
    """
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
    now = parse_utc(now)
    live = [s for s in snapshots if s.live]
    keep = {s.id for s in live[len(live) - keep_last :]} if keep_last else set()
    cutoff = None if older_than_days is None else now - timedelta(days=older_than_days)
    chosen = []
    for snap in live:
        if is_protected(snap):
            continue
        past_expiry = snap.expires_at is not None and parse_utc(snap.expires_at) <= now
        beyond_keep = snap.id not in keep and (
            cutoff is None or parse_utc(snap.created_at) < cutoff
        )
        if past_expiry or beyond_keep:
            chosen.append(snap)
    return chosen
