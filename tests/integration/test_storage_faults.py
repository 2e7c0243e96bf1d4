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

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from reclake.cli import main
from reclake.config import Settings
from reclake.ingest import ingest_events, load_ingest_log
from reclake.ingest.layout import drop_uri
from reclake.lakefs import local_path
from reclake.quality.results import ValidationResult, save_result
from reclake.reader import synthetic
from reclake.snapshots import list_snapshots, live_files, store
from reclake.snapshots.deltars import open_table
from reclake.storagefault import StorageError
from reclake.timeutil import HOUR, iso
from tests.integration.test_bad_inputs import H0, REPO, cli, event, one_line_error, raw

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
    report = json.loads(reclake(published, "doctor", "--json").stdout)
    assert report["problems"] == 0
    assert {f["table"]: f["status"] for f in report["findings"]}["training_samples"] == "ok"


def test_half_written_registry_commit_is_one_line_and_repaired_back_to_the_last_whole_change(
    published, reclake
):
    before = registry_state(published)
    # Version 0 created the registry; 1 and 2 are the publishes.
    newest = local(published, f"{store.REGISTRY_PATH}/_delta_log/00000000000000000002.json")
    newest.write_bytes(newest.read_bytes()[:150])  # cut inside the commit's first action

    line = one_line_error(reclake(published, "snapshots", "list"), 1)
    assert "snapshot registry (_reclake/snapshots)" in line and "reclake doctor" in line
    with pytest.raises(StorageError):  # what vacuum asks: an error, never "no snapshots"
        live_files(published, "training_samples")
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
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12):  # then the last pages
            try:
                while True:
                    out.write(b"\0" * chunk)
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
    # A reclake document on the full disk: named in the error, no partial temp file left.
    with pytest.raises(StorageError, match=r"lake file _reclake/validations/\S+: the filesys"):
        save_result(settings, ValidationResult("v2", "training_samples", 1, True, "x"))
    assert not list(local(settings, "_reclake").rglob(".tmp-*"))

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


# Spark jobs: the ingest on the lake of a few drops (arrival hours H0 and H1).
H1 = H0 + HOUR
JOBS = REPO / "jobs"


def job(name: str):
    """A job module from jobs/ (its main() is what spark-submit runs)."""
    spec = importlib.util.spec_from_file_location(f"{name}_job", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spark_lake(root: Path, landing: Path) -> Settings:
    return Settings(
        lake_root=root.as_uri(),
        landing_root=landing.as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=2,
    )


def write_drops(settings: Settings) -> None:
    """Two arrival hours of 30 events each, with a few lines for quarantine."""
    for n, hour in enumerate((H0, H1)):
        folder = Path(local_path(drop_uri(settings, hour)))
        folder.mkdir(parents=True, exist_ok=True)
        when = (hour + HOUR / 2).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = [raw(event(f"e{n}-{i}", event_time=when, user_id=i % 7 + 1)) for i in range(30)]
        lines += [b"not json", raw(event(f"bad{n}", user_id="7"))]
        (folder / "part-0.jsonl").write_bytes(b"\n".join(lines) + b"\n")


INGESTED = ("bronze/events", "quarantine/events")


def content(settings: Settings) -> dict[str, list[str]]:
    """Every row of the ingest's tables, sorted (content, not versions)."""
    out = {}
    for folder in INGESTED:
        table = open_table(settings.table_uri(folder)).to_pyarrow_table()
        out[folder] = sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())
    return out


def versions(settings: Settings) -> dict[str, int]:
    return {folder: open_table(settings.table_uri(folder)).version() for folder in INGESTED}


def run_ingest(settings: Settings, monkeypatch, capsys, start=H1, end=H1 + HOUR) -> tuple[int, str]:
    """jobs/ingest_events.py main() in this process (on the tests' SparkSession): exit code and
    the last line of stderr."""
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    monkeypatch.setenv("RECLAKE_LANDING_ROOT", settings.landing_root)
    capsys.readouterr()
    code = job("ingest_events").main(["--start", iso(start), "--end", iso(end)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, lines[-1] if lines else ""


@pytest.fixture
def reference(spark, tmp_path) -> Settings:
    """A lake that ingested H0 and H1 without any fault (the content a re-run must reach)."""
    settings = spark_lake(tmp_path / "reference", tmp_path / "landing")
    write_drops(settings)
    ingest_events(spark, settings, H0, H1 + HOUR)
    return settings


def test_ingest_on_a_full_filesystem_fails_in_one_line_commits_nothing_and_a_rerun_converges(
    spark, small_fs, reference, monkeypatch, capsys
):
    settings = spark_lake(small_fs / "lake", Path(local_path(reference.landing_root)))
    ingest_events(spark, settings, H0, H1)
    before, at = content(settings), versions(settings)
    filler = fill(small_fs)

    code, line = run_ingest(settings, monkeypatch, capsys)
    assert code == 1
    assert re.search(r"table \w+ \((bronze|quarantine)/events\): the filesystem is full", line)
    assert "free space on it, then re-run" in line
    assert versions(settings) == at and content(settings) == before  # nothing partial
    with pytest.raises(KeyError):
        load_ingest_log(settings, H1)  # the hour is not marked ingested

    filler.unlink()
    assert run_ingest(settings, monkeypatch, capsys)[0] == 0
    assert content(settings) == content(reference)


@pytest.fixture
def ingested(spark, reference, tmp_path) -> Settings:
    """A lake that ingested H0 only (on a normal disk)."""
    settings = spark_lake(tmp_path / "lake", Path(local_path(reference.landing_root)))
    ingest_events(spark, settings, H0, H1)
    return settings


@pytest.mark.slow
def test_ingest_without_write_access_to_bronze_fails_in_one_line(ingested, no_dac):
    bronze = local(ingested, "bronze/events")
    folders = [bronze, *[p for p in bronze.rglob("*") if p.is_dir()]]
    for folder in folders:
        folder.chmod(0o555)
    try:
        interval = ["--start", iso(H1), "--end", iso(H1 + HOUR)]
        done = subprocess.run(
            [*no_dac, sys.executable, str(JOBS / "ingest_events.py"), *interval],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO / "include"),
                "RECLAKE_LAKE_ROOT": ingested.lake_root,
                "RECLAKE_LANDING_ROOT": ingested.landing_root,
                "RECLAKE_SPARK_MASTER": "local[1]",
            },
            timeout=300,
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)
    line = one_line_error(done, 1)
    assert "table events (bronze/events): permission denied" in line, done.stderr[-3000:]


@pytest.mark.slow
def test_bronze_data_file_deleted_fails_the_next_job_and_doctor_repair_plus_reingest_converge(
    spark, ingested, reference, monkeypatch, capsys, reclake
):
    ingest_events(spark, ingested, H1, H1 + HOUR)
    # A file the H1 ingest wrote: its re-run rewrites H1's rows, so it reads that file.
    lost = max(local(ingested, "bronze/events").rglob("*.parquet"), key=lambda p: p.stat().st_mtime)
    lost.unlink()
    code, line = run_ingest(ingested, monkeypatch, capsys, H1, H1 + HOUR)
    assert code == 1, line
    assert "table events (bronze/events): data file" in line and "reclake doctor" in line

    code, out = checkup(reclake, ingested, "--repair", "events")
    assert "removed 1 missing data file(s)" in out and code == 0, out
    # Bronze comes back from the landing drops: re-ingest every arrival hour.
    assert run_ingest(ingested, monkeypatch, capsys, H0, H1 + HOUR)[0] == 0
    assert content(ingested) == content(reference)


@pytest.mark.slow
def test_bronze_newest_commit_damaged_fails_in_one_line_and_repair_plus_rerun_converge(
    spark, ingested, reference, monkeypatch, capsys, reclake
):
    ingest_events(spark, ingested, H1, H1 + HOUR)
    log = local(ingested, "bronze/events/_delta_log")
    newest = max(log.glob("0*.json"))
    newest.write_bytes(newest.read_bytes()[:100])

    code, line = run_ingest(ingested, monkeypatch, capsys)
    assert code == 1, line
    assert "table events (bronze/events): its Delta log" in line and "is damaged" in line

    code, out = checkup(reclake, ingested, "--repair", "events")
    assert "moved bronze/events/_delta_log/" in out and code == 0, out
    assert run_ingest(ingested, monkeypatch, capsys)[0] == 0
    assert content(ingested) == content(reference)


@pytest.mark.slow
def test_bronze_damaged_checkpoint_fails_in_one_line_and_repair_reads_the_json_commits(
    spark, ingested, reference, monkeypatch, capsys, reclake
):
    open_table(ingested.table_uri("bronze/events")).create_checkpoint()
    (checkpoint,) = local(ingested, "bronze/events/_delta_log").glob("*.checkpoint.parquet")
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])

    code, line = run_ingest(ingested, monkeypatch, capsys)
    assert code == 1, line
    assert "table events (bronze/events): its Delta log" in line and "is damaged" in line

    code, out = checkup(reclake, ingested, "--repair", "events")
    assert "checkpoint.parquet to _reclake/doctor/" in out and code == 0, out
    assert run_ingest(ingested, monkeypatch, capsys)[0] == 0
    assert content(ingested) == content(reference)
