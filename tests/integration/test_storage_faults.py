"""Storage faults (issue #23): a full filesystem, permission denied, a data file deleted behind
the Delta log's back, a damaged commit or checkpoint, a half-written registry commit. Each
gives one line naming the table and what to do (exit 1, no stack trace), publishes nothing
partial, and `reclake doctor` finds and explains it; where the repair needs no backup,
`reclake doctor --repair` applies it and a re-run converges.

Most cases run JVM-free (the registry, the doctor, synthetic training_samples written with
delta-rs) as the CLI in a subprocess; one Spark job meets a full disk in CI. A full
filesystem is a size-limited tmpfs the test mounts, permission denied a subprocess without
the capabilities that let root ignore file modes (the tests skip where neither is allowed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from reclake.cli import main
from reclake.config import Settings
from reclake.quality.results import ValidationResult, save_result
from reclake.reader import synthetic
from reclake.snapshots import list_snapshots, store
from reclake.snapshots.deltars import open_table
from tests.integration.test_bad_inputs import cli, one_line_error

pytestmark = pytest.mark.integration

# A root process without these ignores file modes: dropping them makes chmod bite.
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def lake(tmp_path: Path) -> Settings:
    return Settings(lake_root=(tmp_path / "lake").as_uri())


def env(settings: Settings) -> dict[str, str]:
    return {"RECLAKE_LAKE_ROOT": settings.lake_root}


def local(settings: Settings, relative: str = "") -> Path:
    return Path(settings.lake_root.removeprefix("file://")) / relative


@pytest.fixture
def published(tmp_path, monkeypatch) -> Settings:
    """A lake with two published training_samples snapshots (delta-rs, no Spark)."""
    settings = lake(tmp_path)
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    synthetic.publish_samples(settings, 300)
    synthetic.publish_samples(settings, 200, offset=300)
    return settings


@pytest.fixture
def reclake(capsys, monkeypatch):
    """The `reclake` CLI run in this process (its main(), as the console script calls it):
    a subprocess would spend 3 s per call importing what the parser needs."""

    def run(settings: Settings, *args: str) -> subprocess.CompletedProcess:
        monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def checkup(reclake, settings: Settings, *args: str) -> tuple[int, str]:
    """`reclake doctor` in this process: (exit code, output)."""
    done = reclake(settings, "doctor", *args)
    return done.returncode, done.stdout


def doctor(settings: Settings, *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str]:
    """`reclake doctor` in a subprocess (for a process without some capabilities)."""
    done = cli("doctor", *args, env=env(settings), prefix=prefix)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def registry_state(settings: Settings) -> list[tuple[str, int, bool]]:
    return [(s.id, s.version, s.live) for s in list_snapshots(settings, include_expired=True)]


def rows(settings: Settings) -> list[str]:
    table = open_table(synthetic.table_uri(settings)).to_pyarrow_table(columns=["event_id"])
    return sorted(table.column("event_id").to_pylist())


def test_doctor_says_ok_per_table_on_a_healthy_lake(published, reclake):
    code, out = checkup(reclake, published)
    assert code == 0, out
    lines = {line.split()[0]: line.split()[2] for line in out.splitlines()[1:] if line.strip()}
    assert lines["training_samples"] == "ok" and lines["snapshot_registry"] == "ok"
    assert lines["events"] == "absent"  # never written: not a fault
    assert out.rstrip().endswith("ok: no storage fault found")


def test_half_written_registry_commit_is_one_line_and_repaired_back_to_the_last_whole_change(
    published, reclake
):
    before = registry_state(published)
    # Version 0 created the registry; 1 and 2 are the publishes.
    newest = local(published, f"{store.REGISTRY_PATH}/_delta_log/00000000000000000002.json")
    newest.write_bytes(newest.read_bytes()[:150])  # cut inside the commit's first action

    line = one_line_error(reclake(published, "snapshots", "list"), 1)
    assert "snapshot registry (_reclake/snapshots)" in line and "reclake doctor" in line
    code, out = checkup(reclake, published)
    assert code == 1
    assert "the newest commit _delta_log/00000000000000000002.json is damaged" in out
    assert "--repair snapshot_registry" in out

    code, out = checkup(reclake, published, "--repair", "snapshot_registry")
    assert code == 0, out
    assert "moved _reclake/snapshots/_delta_log/00000000000000000002.json" in out
    assert registry_state(published) == before[:1]  # the second publish is undone, whole
    # Re-running the lost publish (idempotent) converges on the registry never damaged.
    synthetic.publish_version(published, 1)
    after = registry_state(published)
    assert [(v, live) for _, v, live in after] == [(v, live) for _, v, live in before]


def test_data_file_deleted_behind_the_log_is_found_and_removed_from_the_table(published, reclake):
    files = sorted(local(published, "gold/training_samples").glob("sample_date=*/*.parquet"))
    lost = files[-1]
    lost_rows = pa.parquet.read_table(lost).num_rows
    everything = rows(published)
    lost.unlink()

    code, out = checkup(reclake, published)
    assert code == 1
    detail = f"1 of {len(files)} data files of version 1 are missing, e.g. sample_date="
    assert detail in out and "--repair training_samples" in out
    with pytest.raises(FileNotFoundError):
        rows(published)

    code, out = checkup(reclake, published, "--repair", "training_samples")
    assert "removed 1 missing data file(s) from the log" in out
    assert len(rows(published)) == len(everything) - lost_rows  # readable again, rows gone
    # The live snapshots that held the file stay broken, and the doctor keeps saying so.
    assert code == 1 and "missing_snapshot_files" in out and "lost 1 of its" in out


def test_damaged_checkpoint_is_moved_aside_and_the_table_reads_from_its_json_commits(
    published, reclake
):
    uri = synthetic.table_uri(published)
    open_table(uri).create_checkpoint()
    everything = rows(published)
    checkpoint = local(published, "gold/training_samples/_delta_log").glob("*.checkpoint.parquet")
    (checkpoint,) = list(checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])

    code, out = checkup(reclake, published)
    assert code == 1 and "checkpoint 1 is damaged" in out
    assert "JSON commits 0..1, all present" in out
    code, out = checkup(reclake, published, "--repair", "training_samples")
    assert code == 0, out
    assert rows(published) == everything


def test_damaged_newest_commit_of_a_table_returns_it_to_the_previous_version(published, reclake):
    commit = local(published, "gold/training_samples/_delta_log/00000000000000000001.json")
    commit.write_bytes(b"")  # a commit file the filesystem lost the content of
    code, out = checkup(reclake, published)
    assert code == 1 and "newest commit _delta_log/00000000000000000001.json" in out
    assert "(empty file)" in out
    checkup(reclake, published, "--repair", "training_samples")
    assert open_table(synthetic.table_uri(published)).version() == 0
    assert len(rows(published)) == 300


def test_damaged_commit_with_later_commits_needs_a_backup(published, reclake):
    synthetic.write_samples(synthetic.table_uri(published), synthetic.sample_batch(5, offset=900))
    commit = local(published, "gold/training_samples/_delta_log/00000000000000000001.json")
    commit.write_bytes(commit.read_bytes()[:-40])
    code, out = checkup(reclake, published)
    assert code == 1 and "later commits depend on it: versions 1..2 cannot be read" in out
    done = reclake(published, "doctor", "--repair", "training_samples")
    assert "doctor cannot repair this" in one_line_error(done, 1)
    assert commit.exists()  # nothing was touched


def test_damaged_reclake_document_names_the_job_that_rewrites_it(published, reclake):
    result = sorted(local(published, "_reclake/validations").rglob("*.json"))[0]
    result.write_text('{"id": "half')
    code, out = checkup(reclake, published)
    assert code == 1 and "damaged_document" in out and "re-run validate" in out


@pytest.fixture
def no_dac() -> tuple[str, ...]:
    """The command prefix that makes file modes bind a root process (skips where it cannot)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    return NO_DAC


def test_permission_denied_on_the_registry_is_one_line_and_found_by_the_doctor(published, no_dac):
    registry = local(published, store.REGISTRY_PATH)
    registry.chmod(0)
    try:
        done = cli("snapshots", "list", env=env(published), prefix=no_dac)
        line = one_line_error(done, 1)
        code, out = doctor(published, prefix=no_dac)
    finally:
        registry.chmod(0o755)
    assert "the snapshot registry (_reclake/snapshots): permission denied" in line
    assert "read and write access" in line
    assert code == 1 and "snapshot_registry" in out and "Permission denied" in out


@pytest.mark.slow
def test_read_only_table_folder_is_found_by_the_doctor(published, no_dac):
    folder = local(published, "gold/training_samples")
    folder.chmod(0o555)
    try:
        code, out = doctor(published, prefix=no_dac)
    finally:
        folder.chmod(0o755)
    assert code == 1
    assert f"{folder} is not writable by this user: jobs writing the table fail" in out


@pytest.fixture
def small_fs(tmp_path) -> Path:
    """A 24 MiB tmpfs mounted for the test (skips where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(mount: Path) -> Path:
    """Take every free byte of the filesystem; returns the filler to delete."""
    filler = mount / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_publish_on_a_full_filesystem_changes_nothing_and_converges_after_space_is_freed(
    small_fs, monkeypatch, reclake
):
    settings = Settings(lake_root=(small_fs / "lake").as_uri())
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    synthetic.publish_samples(settings, 300)
    version = synthetic.write_samples(
        synthetic.table_uri(settings), synthetic.sample_batch(200, offset=300)
    )
    # The validation result is saved before the disk fills: the publish's only write is the
    # registry commit.
    save_result(
        settings,
        ValidationResult(
            id="v1", table="training_samples", version=version, success=True, created_at="x"
        ),
    )
    before = registry_state(settings)
    filler = fill(small_fs)

    publish = ("snapshots", "publish", "training_samples", "--version", "1")
    line = one_line_error(reclake(settings, *publish, "--validation-id", "v1"), 1)
    assert "the snapshot registry (_reclake/snapshots): the filesystem is full" in line
    assert "free space on it, then re-run" in line
    assert registry_state(settings) == before  # nothing partial: the commit never happened
    code, out = checkup(reclake, settings)
    assert code == 1 and "(lake)" in out and "is full" in out

    filler.unlink()
    done = reclake(settings, *publish, "--validation-id", "v1")
    assert done.returncode == 0, done.stderr
    assert [v for _, v, live in registry_state(settings) if live] == [0, 1]
    assert checkup(reclake, settings)[0] == 0
