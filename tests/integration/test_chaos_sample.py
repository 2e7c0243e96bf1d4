"""A small sample of `make chaos` (bench/chaos.py) in CI: real job processes SIGKILLed with
their whole process tree at a crash point, re-run, and their lake compared with a run never
killed. The full suite (every job, 20 trials each) is `make chaos`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.chaos import Aim, Run, copy_lake, kill_and_rerun, run_job
from bench.chaos_lake import fingerprint
from reclake.config import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def reference(argv: list[str], base: Path, folder: Path) -> tuple[Run, dict]:
    """The never-killed run of `argv` on a copy of `base`, and the lake it leaves."""
    copy_lake(base, folder / "lake")
    run = run_job(argv, folder)
    assert run.returncode == 0, run.stderr
    return run, fingerprint(folder / "lake")


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory) -> tuple[Path, list[str]]:
    """A lake with two published training_samples snapshots (delta-rs, no JVM)."""
    from reclake.reader.synthetic import publish_samples

    lake = tmp_path_factory.mktemp("chaos") / "lake"
    settings = Settings(lake_root=lake.as_uri())
    ids = [publish_samples(settings, 50, offset=n * 50).id for n in range(2)]
    return lake, ids


@pytest.mark.parametrize(
    ("job", "args", "aim"),
    [
        ("rollback", ["rollback", "training_samples", "--to", "{first}"], Aim("commit", n=1)),
        # Killed at its first new Delta log entry; left out of CI for time (make test-slow).
        pytest.param("expire", ["expire", "--keep-last", "1"], Aim("log"), marks=pytest.mark.slow),
    ],
)
def test_registry_changes_killed_at_their_commit_converge(two_snapshots, tmp_path, job, args, aim):
    base, ids = two_snapshots
    argv = [
        sys.executable,
        "-m",
        "reclake.cli",
        "snapshots",
        *(a.format(first=ids[0]) for a in args),
    ]
    run, want = reference(argv, base, tmp_path / "reference")
    assert want["registry"]["snapshots"], "the reference lake holds the snapshots"

    trial = kill_and_rerun(job, argv, base, run, want, aim, tmp_path / "trial")

    assert trial.killed, "the aimed moment was reached"
    assert trial.problems == []


def test_ingest_killed_between_its_bronze_commit_and_the_rest_converges(tmp_path):
    """Killed right after the first chunk's bronze commit (its quarantine commit and hour
    logs not written yet), the re-run gives the tables and logs of a run never killed."""
    from reclake.generator import GeneratorConfig, generate
    from reclake.timeutil import parse_utc

    base = tmp_path / "base" / "lake"
    start, end = "2026-11-20T00:00Z", "2026-11-20T02:00Z"
    config = GeneratorConfig(events_per_hour=100, n_users=20, n_items=15)
    generate(Settings(lake_root=base.as_uri()), parse_utc(start), parse_utc(end), config)
    argv = [sys.executable, str(REPO / "jobs" / "ingest_events.py"), "--start", start]
    argv += ["--end", end, "--chunk-hours", "1"]
    run, want = reference(argv, base, tmp_path / "reference")
    assert run.points["commit"] == 4  # bronze + quarantine per chunk
    assert want["tables"]["bronze/events"]["rows"] > 0

    trial = kill_and_rerun("ingest", argv, base, run, want, Aim("commit", n=1), tmp_path / "t")

    assert trial.killed and trial.problems == []
    assert trial.rerun_code == 0 and run.returncode == 0
