"""Retry Delta commit conflicts with exponential backoff: one helper for maintenance, for
the writers that run beside it and for the snapshot registry's delta-rs commits (optimistic
concurrency means the loser retries)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
# Starts the warning logged before each retry: what `make soak` counts retries by.
RETRY_LOG_MARKER = "Delta commit conflict"

# Delta's error classes for commit conflicts, for conflicts that reach Python unconverted.
_CONFLICT_MARKERS = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    # delta-rs (the snapshot registry): a commit that lost its version to a concurrent one.
    "CommitFailedError",
)


def conflict_types() -> tuple[type[BaseException], ...]:
    """Delta's commit-conflict exception classes (the JVM-converted ones subclass these)."""
    import delta.exceptions  # noqa: F401  (installs the JVM -> Python conversion)
    from delta.exceptions import base

    return (
        base.DeltaConcurrentModificationException,
        base.ConcurrentWriteException,
        base.MetadataChangedException,
        base.ProtocolChangedException,
        base.ConcurrentAppendException,
        base.ConcurrentDeleteReadException,
        base.ConcurrentDeleteDeleteException,
        base.ConcurrentTransactionException,
    )


def is_conflict(exc: BaseException) -> bool:
    """True when `exc` is a Delta commit conflict, i.e. retrying the operation may succeed."""
    # The text first: a delta-rs conflict (the JVM-free registry) needs no pyspark import.
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _CONFLICT_MARKERS) or isinstance(exc, conflict_types())


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float = 0.5) -> float:
    """Delay before retry `attempt` (1-based): base * 2^(attempt-1), capped, with jitter."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay * (1 - jitter + jitter * random.random())


@dataclass(frozen=True)
class Retried(Generic[T]):
    """An operation's result and the conflicts retried to get it."""

    value: T
    conflicts: int
    errors: tuple[str, ...]


def retry_on_conflict(
    operation: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 0.5,
    max_delay: float = 16.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Retried[T]:
    """Run `operation`, retrying Delta commit conflicts with exponential backoff.

    Any other exception propagates at once; a conflict on the last attempt propagates too.
    The operation must be safe to re-run from the start (each Delta write re-reads the table).
    """
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            return Retried(operation(), len(errors), tuple(errors))
        except Exception as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            delay = backoff_seconds(attempt, base_delay, max_delay)
            log.warning(
                "%s (attempt %d/%d), retry in %.2fs: %s",
                RETRY_LOG_MARKER,
                attempt,
                attempts,
                delay,
                errors[-1],
            )
            sleep(delay)
    raise AssertionError("unreachable")
