"""reclake.maintenance.retry: which errors are commit conflicts, and what a retry logs (the
line `make soak` counts retries by)."""

from __future__ import annotations

import logging

import pytest
from deltalake.exceptions import CommitFailedError

from reclake.maintenance.retry import RETRY_LOG_MARKER, is_conflict, retry_on_conflict


@pytest.mark.parametrize(
    ("error", "conflict"),
    [
        # delta-rs, the snapshot registry's engine: a commit that lost its version.
        (CommitFailedError("Transaction failed: version already exists: 7"), True),
        # Spark's conflicts as they reach Python unconverted.
        (RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: files added"), True),
        (RuntimeError("MetadataChangedException: metadata changed concurrently"), True),
        # Anything else is no reason to retry.
        (FileNotFoundError("part-0001.parquet"), False),
        (ValueError("bad interval"), False),
    ],
)
def test_conflicts_are_recognised_by_engine_class_or_error_name(error, conflict):
    assert is_conflict(error) is conflict


def test_registry_conflicts_are_retried_and_each_retry_logs_the_marker(caplog):
    outcomes = [CommitFailedError("version already exists"), CommitFailedError("again"), "done"]
    slept: list[float] = []

    def commit() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.WARNING, logger="reclake.maintenance.retry"):
        result = retry_on_conflict(commit, base_delay=0.05, max_delay=1.0, sleep=slept.append)

    assert (result.value, result.conflicts) == ("done", 2)
    assert len(slept) == 2 and all(0 < s <= 0.1 for s in slept)
    assert [m.split(" (")[0] for m in caplog.messages] == [RETRY_LOG_MARKER] * 2


def test_a_conflict_on_the_last_attempt_and_other_errors_propagate():
    calls: list[str] = []

    def lose() -> None:
        calls.append("lose")
        raise CommitFailedError("version already exists")

    def missing() -> None:
        calls.append("missing")
        raise FileNotFoundError("part-0001.parquet")

    with pytest.raises(CommitFailedError):
        retry_on_conflict(lose, attempts=3, sleep=lambda _: None)
    with pytest.raises(FileNotFoundError):
        retry_on_conflict(missing, sleep=lambda _: None)
    assert calls == ["lose"] * 3 + ["missing"]  # no retry of what is not a conflict
