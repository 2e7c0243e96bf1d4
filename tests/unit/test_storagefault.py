"""The pure parts of storage faults: which engine message is which fault, which table a path
belongs to, and what a parsed Delta log's damage means (reclake.storagefault, reclake.doctor).
The messages are the engines' own, copied from the failures the integration tests provoke."""

from __future__ import annotations

import pytest

from reclake.doctor import (
    DAMAGED_CHECKPOINT,
    MISSING_COMMIT,
    LogState,
    _damaged_files,
    log_damage,
)
from reclake.storagefault import (
    DAMAGED_LOG,
    DENIED,
    FULL,
    MISSING_FILE,
    classify,
    describe,
    place_of,
)

LAKE = "file:///srv/lake"

# Messages as the engines print them (delta-rs with its colour codes and arrows).
DELTA_RS_TRUNCATED = (
    "Kernel error: Json error: Truncated record whilst reading string\n   0: <unknown>"
)
DELTA_RS_FOOTER = "Kernel error: Arrow error: Parquet error: Invalid Parquet file. Corrupt footer"
DELTA_RS_DENIED = (
    "Kernel error -> Generic LocalFileSystem error\n          \x1b[31m\u21b3\x1b[0m Unable to "
    "open file /srv/lake/_reclake/snapshots/_delta_log/_last_checkpoint\n           "
    "\x1b[31m\u21b3\x1b[0m Permission denied (os error 13)\n"
)
DELTA_RS_MISSING = (
    "Object at location /srv/lake/gold/training_samples/sample_date=2024-01-01/part-0.parquet "
    "not found\n  \x1b[31m\u21b3\x1b[0m No such file or directory (os error 2)\n"
)
PYARROW_FULL = "[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"


@pytest.mark.parametrize(
    "text, kind",
    [
        (PYARROW_FULL, FULL),
        ("java.io.IOException: Disk quota exceeded", FULL),
        (DELTA_RS_DENIED, DENIED),
        ("java.nio.file.AccessDeniedException: /srv/lake/bronze/events/x", DENIED),
        (DELTA_RS_TRUNCATED, DAMAGED_LOG),
        (DELTA_RS_FOOTER, DAMAGED_LOG),
        ("com.fasterxml.jackson.core.io.JsonEOFException: Unexpected end-of-input", DAMAGED_LOG),
        (DELTA_RS_MISSING, MISSING_FILE),
        (
            "java.io.FileNotFoundException: File file:/srv/lake/x.parquet does not exist",
            MISSING_FILE,
        ),
        ("division by zero", None),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_engine_messages_are_classified(text, kind):
    assert classify(text) == kind


@pytest.mark.parametrize(
    "path, name, folder, inside",
    [
        ("/srv/lake/bronze/events/event_date=2026-11-20/p.parquet", "events", "bronze/events",
         "event_date=2026-11-20/p.parquet"),
        ("file:///srv/lake/_reclake/snapshots/_delta_log/1.json", "snapshot_registry",
         "_reclake/snapshots", "_delta_log/1.json"),
        ("/srv/lake/features/user_window_state", "user_window_state",
         "features/user_window_state", ""),
        ("/srv/lake/_reclake/ingest_log/x.json", "_reclake/ingest_log/x.json", "",
         "_reclake/ingest_log/x.json"),
    ],
)  # fmt: skip
def test_a_lake_path_is_placed_in_its_table(path, name, folder, inside):
    place = place_of(LAKE, path)
    assert (place.name, place.folder, place.inside) == (name, folder, inside)


def test_a_path_outside_the_lake_has_no_place():
    assert place_of(LAKE, "/srv/landing/events/date=2026-11-20/hour=0/a.jsonl") is None


def test_a_spark_write_on_a_full_disk_names_the_table_it_wrote():
    error = RuntimeError(
        "[TASK_WRITE_FAILED] Task failed while writing rows to file:/srv/lake/bronze/events.\n"
        "Caused by: java.io.IOException: No space left on device"
    )
    fault = describe(error, LAKE)
    assert str(fault).startswith("table events (bronze/events): the filesystem is full (")
    assert "No space left on device" in str(fault) and "\n" not in str(fault)


def test_denied_names_the_path_without_the_engines_decoration():
    fault = describe(OSError(DELTA_RS_DENIED), LAKE)
    assert str(fault).startswith(
        "the snapshot registry (_reclake/snapshots): permission denied on "
        "_reclake/snapshots/_delta_log/_last_checkpoint (Permission denied (os error 13))"
    )


def test_a_damaged_log_without_a_path_takes_the_table_being_read():
    error = Exception(DELTA_RS_TRUNCATED)
    assert describe(error, LAKE) is None  # no table known: not claimed as a storage fault
    fault = describe(error, LAKE, f"{LAKE}/_reclake/snapshots")
    assert fault.kind == DAMAGED_LOG and fault.table == "snapshot_registry"


def test_a_missing_file_that_is_not_a_table_data_file_is_not_a_storage_fault():
    missing_drop = FileNotFoundError("No such file or directory: /srv/lake/landing/events/x")
    assert describe(missing_drop, LAKE) is None
    fault = describe(FileNotFoundError(DELTA_RS_MISSING), LAKE)
    assert fault.kind == MISSING_FILE and fault.table == "training_samples"
    assert "sample_date=2024-01-01/part-0.parquet is named by the Delta log" in str(fault)


def log(commits=(), bad=None, checkpoints=(), bad_checkpoints=(), last=None, sums=None):
    return LogState(
        commits={v: (bad or {}).get(v) for v in commits},
        checkpoints={v: ("corrupt" if v in bad_checkpoints else None) for v in checkpoints},
        last_checkpoint=last,
        checksums=sums or {},
    )


def damage(state: LogState):
    found = log_damage("events", "bronze/events", state)
    return None if found is None else (found.problem, found.detail, found.fix)


def test_an_intact_log_has_no_damage():
    assert damage(log(range(12), checkpoints=[10])) is None


def test_a_damaged_newest_commit_is_repaired_by_moving_it_aside():
    kind, detail, fix = damage(log(range(4), bad={3: "empty file"}))
    assert kind == DAMAGED_LOG and "newest commit _delta_log/00000000000000000003.json" in detail
    assert "--repair events" in fix and "returns to version 2" in fix
    assert _damaged_files(log(range(4), bad={3: "x"}), DAMAGED_LOG) == [
        "00000000000000000003.json",
        ".00000000000000000003.json.crc",
        "00000000000000000003.crc",
    ]


def test_a_damaged_commit_later_ones_depend_on_needs_a_backup():
    kind, detail, fix = damage(log(range(5), bad={2: "line 1 is not JSON"}))
    assert kind == DAMAGED_LOG and "versions 2..4 cannot be read" in detail
    assert "--repair" not in fix and "backup" in fix


def test_a_damaged_commit_before_an_intact_checkpoint_only_breaks_time_travel():
    _, detail, _ = damage(log(range(12), bad={4: "x"}, checkpoints=[10]))
    assert "reads from checkpoint 10" in detail and "versions 4..9 fails" in detail


def test_a_missing_commit_after_the_checkpoint():
    kind, detail, _ = damage(log([0, 1, 3, 4]))
    assert kind == MISSING_COMMIT and "00000000000000000002.json is missing" in detail


def test_a_damaged_checkpoint_is_repairable_only_while_its_commits_are_all_there():
    kind, _, fix = damage(log(range(12), checkpoints=[10], bad_checkpoints=[10]))
    assert kind == DAMAGED_CHECKPOINT and "JSON commits 0..10, all present" in fix
    # Log cleanup removed commits 0..4: nothing to rebuild the state from.
    _, _, fix = damage(log(range(5, 12), checkpoints=[10], bad_checkpoints=[10]))
    assert "restore it from a backup" in fix


def test_damaged_last_checkpoint_and_version_checksum_are_moved_aside():
    assert damage(log(range(3), last="not JSON"))[0] == DAMAGED_LOG
    assert _damaged_files(log(range(3), last="x"), DAMAGED_LOG) == ["_last_checkpoint"]
    _, detail, _ = damage(log(range(3), sums={2: "not JSON"}))
    assert "version checksum _delta_log/00000000000000000002.crc" in detail
