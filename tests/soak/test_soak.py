"""The concurrency soak (`make soak`): its tallies, and a short sample of it in CI.

The sample runs the JVM-free synthetic publisher (each version a rewrite, so older versions'
files are held by their snapshots alone), optimize and vacuum (Spark, each its own process,
vacuum with a retention of seconds), snapshot expire and the PyTorch reader on one lake for
24 seconds from a common start (after every worker's start-up, which on a loaded machine
takes longer than that). The full `make soak` is where vacuum deletes while snapshots are
read (docs/reliability.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soak

SOAK = Path(soak.__file__)


def test_retries_are_counted_from_the_retry_helpers_warning():
    log = "\n".join(
        [
            "12:00:01 reclake.maintenance.retry Delta commit conflict (attempt 1/6), retry in 0.4s",
            "12:00:02 py4j INFO something else",
            "12:00:03 reclake.maintenance.retry Delta commit conflict (attempt 2/6), retry in 0.9s",
        ]
    )
    assert soak.count_retries(log) == 2


def test_writer_figures_tally_operations_and_keep_each_error():
    records = [
        {"op": "generate", "ok": True},  # bookkeeping, not an operation
        {"op": "optimize events", "ok": True},
        {"op": "optimize events", "ok": False, "error": "ConcurrentAppendException: x"},
        {"op": "optimize items", "ok": False, "error": "ConcurrentAppendException: x"},
        {"op": "optimize users", "ok": False},
    ]
    f = soak.writer_figures("optimize", records, "")
    assert (f.attempted, f.committed, f.failed, f.retried) == (4, 1, 3, 0)
    assert f.errors == {
        "optimize: ConcurrentAppendException: x": 2,
        "optimize: (no error text)": 1,
    }


def test_expected_ingest_takes_earlier_hours_redeliveries_off_later_hours():
    records = [
        {"op": "generate", "hour": "h0", "valid_events": 100, "quarantine_lines": 3,
         "redelivered_before_start": 4},
        {"op": "ingest", "hour": "h0", "ok": True},
        {"op": "generate", "hour": "h1", "valid_events": 90, "quarantine_lines": 2,
         "redelivered_before_start": 5},
        {"op": "ingest", "hour": "h1", "ok": False},
        {"op": "generate", "hour": "h1", "valid_events": 90, "quarantine_lines": 2,
         "redelivered_before_start": 5},
        {"op": "ingest", "hour": "h1", "ok": True},
        {"op": "generate", "hour": "h2", "valid_events": 80, "quarantine_lines": 1,
         "redelivered_before_start": 1},  # never ingested: not expected anywhere
    ]  # fmt: skip
    assert soak.expected_ingest(records) == {
        "h0": {"bronze": 100, "quarantine": 3},
        "h1": {"bronze": 85, "quarantine": 2},
    }


def test_lost_and_extra_rows_are_counted_per_hour_not_netted():
    # One hour short by 2, another over by 3: 2 lost and 3 extra, not "1 extra".
    assert soak.lost_and_extra({"a": 10, "b": 5}, {"a": 8, "b": 8, "c": 99}) == (2, 3)
    assert soak.lost_and_extra({"a": 10}, {}) == (10, 0)


@pytest.mark.integration
def test_soak_sample_loses_nothing_and_never_fails_a_live_read(tmp_path):
    args = ["--minutes", "0.4", "--writers", ",".join(soak.SAMPLE)]
    args += ["--dir", str(tmp_path), "--retention-minutes", "0.1", "--grace", "90", "--json"]
    args += ["--maintenance-pause", "2", "--tail", "0"]
    done = subprocess.run(
        [sys.executable, str(SOAK), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0, (summary, done.stderr[-2000:])
    writers = {w["writer"]: w for w in summary["writers"]}
    assert all(w["failed"] == 0 and w["exit"] == 0 for w in writers.values()), writers
    assert writers["synthetic"]["committed"] >= 2  # a snapshot replaced while it was read
    assert writers["vacuum"]["committed"] >= 1 and writers["expire"]["committed"] >= 1
    assert summary["rows_lost"] == 0 and summary["rows_extra"] == 0
    assert summary["rows"]["snapshots_reread"] >= 1
    assert summary["reader"]["epochs_ok"] >= 1
    assert summary["live_snapshot_reads_failed"] == 0
