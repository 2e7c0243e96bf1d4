"""`make chaos`: SIGKILL each job's whole process tree at random moments, re-run it, and
compare the lake with one whose job was never killed (docs/reliability.md, "Crashes").

    .venv/bin/python bench/chaos.py [--trials 20] [--jobs ingest,publish] [--seed S]
    .venv/bin/python bench/chaos.py --jobs vacuum --replay 4711   # one trial again

A small lake is built once by running the pipeline's jobs one after another as users run
them (`python jobs/<job>.py ...`, `python -m reclake.cli ...`, local Spark); the folder before
a job is that job's base and the folder after it its never-killed reference (cached under
.chaos/<code key>/). A trial copies the base, starts the job in a process group of its own,
SIGKILLs the group (driver, JVM, Python workers) at the moment its seed draws, re-runs the
job to success and compares every table, the snapshot registry and the per-hour records
with the reference (bench/chaos_lake.py). Moments: a time in the job's measured duration;
the first new data file (inside a Delta commit: data written, log entry not yet); the first
new Delta log entry (just after a commit); the n-th Delta commit or lake document of the job
(reclake.chaos crash points: between a table commit and its log record, a document's temp
file written but not moved).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO)]

from bench.chaos_lake import differences, fingerprint  # noqa: E402

START = "2026-11-20T00:00Z"
ARRIVALS_END = "2026-11-20T05:00Z"  # five arrival hours: the label lag is three
SAMPLED_END = "2026-11-20T02:00Z"
GENERATE = ["--events-per-hour", "150", "--users", "40", "--items", "30", "--seed", "7"]
POLL_SECONDS = 0.01

Outputs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """One run of the pipeline on the prepared lake; `job` steps are the ones trials kill."""

    name: str
    base: str | None  # the step whose lake this one starts from
    argv: Callable[[Outputs], list[str]]
    job: bool = True
    spark: bool = True


def _job(script: str, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "jobs" / script), *args]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reclake.cli", *args]


SAMPLED = ("--start", START, "--end", SAMPLED_END)


def _gate_steps(suffix: str, base: str, job: bool) -> tuple[Step, Step, Step]:
    """validate -> audit -> publish of training_samples (write-audit-publish), each step named
    with `suffix`; only the validate and publish of a `job` gate are killed by trials."""
    validate, audit, publish = (f"{n}{suffix}" for n in ("validate", "audit", "publish"))

    def gate(out: Outputs, *extra: str) -> tuple[str, ...]:
        return ("--table", "training_samples", "--validation-id", out[validate]["id"], *extra)

    return (
        Step(validate, base, lambda _: _job("validate.py", "--table", "training_samples"), job=job),
        Step(audit, validate, lambda out: _job("audit.py", *gate(out)), job=False),
        Step(
            publish,
            audit,
            lambda out: _job(
                "publish_snapshot.py", *gate(out, "--audit-id", out[audit]["id"], *SAMPLED)
            ),
            job=job,
            spark=False,
        ),
    )


STEPS = (
    Step(
        "landing",
        None,
        lambda _: _cli("generate", "--start", START, "--end", ARRIVALS_END, *GENERATE),
        job=False,
        spark=False,
    ),
    Step(
        "ingest",
        "landing",
        lambda _: _job(
            "ingest_events.py", "--start", START, "--end", ARRIVALS_END, "--chunk-hours", "2"
        ),
    ),
    Step("dims", "ingest", lambda _: _job("load_dims.py")),
    Step(
        "tiles",
        "dims",
        lambda _: _job(
            "build_tiles.py", "--start", START, "--end", ARRIVALS_END, "--chunk-hours", "2"
        ),
    ),
    Step("labels", "tiles", lambda _: _job("label_impressions.py", *SAMPLED, "--chunk-hours", "1")),
    Step(
        "samples",
        "labels",
        lambda _: _job("build_training_samples.py", *SAMPLED, "--chunk-hours", "1"),
    ),
    *_gate_steps("", "samples", job=True),
    Step("optimize", "publish", lambda _: _job("optimize.py")),
    # Retention 0: everything no version, window or live snapshot needs goes, at once.
    Step("vacuum", "optimize", lambda _: _job("vacuum.py", "--retention-hours", "0")),
    # A second snapshot (of the optimized version) for expire and rollback to work on.
    *_gate_steps("2", "vacuum", job=False),
    Step(
        "expire",
        "publish2",
        lambda _: _cli("snapshots", "expire", "--keep-last", "1"),
        spark=False,
    ),
    Step(
        "rollback",
        "publish2",
        lambda out: _cli("snapshots", "rollback", "training_samples", "--to", out["publish"]["id"]),
        spark=False,
    ),
)
JOBS = tuple(s.name for s in STEPS if s.job)


@dataclass
class Run:
    """One process run of a job: exit code, seconds, its last JSON line, crash points passed."""

    returncode: int
    seconds: float
    output: dict[str, Any] | None
    points: dict[str, int] = field(default_factory=dict)
    killed: bool = False
    leftover: int = 0  # processes of its group alive after it ended (killed then)
    stderr: str = ""


@dataclass(frozen=True)
class Aim:
    """When a trial kills: after `seconds`, at the first new data file or log entry, or at the
    n-th pass of a reclake.chaos crash point."""

    kind: str  # time | data | log | commit | document
    seconds: float = 0.0
    n: int = 0

    def __str__(self) -> str:
        if self.kind == "time":
            return f"time {self.seconds:.1f}s"
        return f"{self.kind}:{self.n}" if self.n else f"first new {self.kind} file"


def choose_aim(rng: random.Random, seconds: float, points: dict[str, int]) -> Aim:
    """A kill moment for one trial: a random time in the job's measured run, the first new
    data file or log entry, or a random pass of a crash point the job goes through."""
    kinds = ["time", "time", "data", "log", *(p for p in ("commit", "document") if points.get(p))]
    kind = rng.choice(kinds)
    if kind == "time":
        return Aim(kind, seconds=rng.uniform(0.05, 1.0) * seconds)
    if kind in ("commit", "document"):
        return Aim(kind, n=rng.randint(1, points[kind]))
    return Aim(kind)


def job_env(folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a job run on the lake in `folder` (small local Spark, scratch inside)."""
    scratch = folder / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECLAKE_") or k in ("RECLAKE_JARS_DIR",)
    }
    env.update(
        {
            "RECLAKE_LAKE_ROOT": (folder / "lake").as_uri(),
            "RECLAKE_SPARK_MASTER": "local[2]",
            "RECLAKE_SPARK_SHUFFLE_PARTITIONS": "2",
            "SPARK_LOCAL_DIRS": str(scratch),
            "TMPDIR": str(scratch),
            "PYTHONPATH": os.pathsep.join([str(REPO / "include"), env.get("PYTHONPATH", "")]),
            "SPARK_LOCAL_IP": env.get("SPARK_LOCAL_IP", "127.0.0.1"),
            **(extra or {}),
        }
    )
    return env


def run_job(argv: list[str], folder: Path, aim: Aim | None = None) -> Run:
    """Run one job in its own process group on the lake in `folder`; with an aim, SIGKILL the
    whole group at that moment (a job that ends first is simply not killed)."""
    from reclake import chaos

    trace = folder / "points.txt"
    trace.unlink(missing_ok=True)
    extra = {chaos.TRACE: str(trace)}
    if aim and aim.kind in chaos.POINTS:
        extra[chaos.KILL_AT] = f"{aim.kind}:{aim.n}"
    began = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        env=job_env(folder, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the JVM and workers go with it
    )
    killer = None
    if aim and aim.kind in ("time", "data", "log"):
        killer = threading.Thread(target=_kill_when, args=(proc, aim, folder / "lake"), daemon=True)
        killer.start()
    stdout, stderr = proc.communicate()
    seconds = time.monotonic() - began
    if killer:
        killer.join()
    killed = proc.returncode == -signal.SIGKILL
    leftover = _wait_group_gone(proc.pid, 5.0 if killed else 30.0)
    points: dict[str, int] = {}
    if trace.exists():
        for name in trace.read_text().split():
            points[name] = points.get(name, 0) + 1
    return Run(
        proc.returncode,
        seconds,
        _last_json(stdout),
        points,
        killed=killed,
        leftover=leftover,
        stderr=stderr[-2000:],
    )


def _kill_when(proc: subprocess.Popen, aim: Aim, lake: Path) -> None:
    """Watch the job and SIGKILL its process group when the aim is reached."""
    deadline = time.monotonic() + aim.seconds
    known = _files(lake) if aim.kind != "time" else set()
    while proc.poll() is None:
        if aim.kind == "time":
            hit = time.monotonic() >= deadline
        else:
            hit = any(_is_aimed(aim.kind, f) for f in _files(lake) - known)
        if hit:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.killpg(proc.pid, signal.SIGKILL)
            return
        time.sleep(POLL_SECONDS)


def _is_aimed(kind: str, rel: str) -> bool:
    """A new data file of a table (`data`) or a new commit of a Delta log (`log`)."""
    in_log = "/_delta_log/" in f"/{rel}"
    if kind == "log":
        return in_log and rel.endswith(".json") and "/." not in f"/{rel}"
    return not in_log and rel.endswith(".parquet")


def _files(root: Path) -> set[str]:
    out = set()
    for folder, _, names in os.walk(root):
        base = os.path.relpath(folder, root)
        out.update(os.path.join(base, n) for n in names)
    return out


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> int:
    """Wait until no live process of the job's group is left (its JVM ends with the driver);
    returns how many were still there after `timeout`, killed then so that no trial leaks
    into the next."""
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = len(group_members(pgid))
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return left


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group `pgid` (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # Fields after the command name (which may hold spaces): state, ppid, pgrp, ...
        state, _, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry))
    return members


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def copy_lake(source: Path, target: Path) -> None:
    """Copy a prepared lake folder (cp -a, reflinks where the filesystem has them)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)


def data_key() -> str:
    """What names the prepared lakes: the generated data and the steps' command lines."""
    text = json.dumps([GENERATE, START, ARRIVALS_END, SAMPLED_END, [s.name for s in STEPS]])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def head_commit() -> str:
    """The checkout's commit (the prepared lakes record the one they were built at)."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Prepared:
    """Each step's lake folder after it ran, with its output, duration and crash points."""

    root: Path
    runs: dict[str, Run]

    def folder(self, step: str) -> Path:
        return self.root / step

    def outputs(self) -> Outputs:
        return {name: run.output or {} for name, run in self.runs.items()}


def prepare(root: Path, needed: list[str], log=print) -> Prepared:
    """Run the pipeline's steps once, each on a copy of its base (cached in `root`), as far
    as the `needed` jobs require."""
    by_name = {s.name: s for s in STEPS}
    wanted: set[str] = set()
    for name in needed:
        while name and name not in wanted:
            wanted.add(name)
            name = by_name[name].base
    runs: dict[str, Run] = {}
    for step in STEPS:
        if step.name not in wanted:
            continue
        folder = root / step.name
        done = folder / "done.json"
        if done.exists():
            runs[step.name] = Run(**json.loads(done.read_text()))
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if step.base:
            copy_lake(root / step.base / "lake", folder / "lake")
        else:
            (folder / "lake").mkdir(parents=True)
        run = run_job(step.argv({n: r.output or {} for n, r in runs.items()}), folder)
        if run.returncode != 0:
            raise RuntimeError(f"preparing {step.name} failed ({run.returncode}):\n{run.stderr}")
        log(f"prepared {step.name} in {run.seconds:.1f} s, crash points {run.points}")
        runs[step.name] = run
        done.write_text(json.dumps(run.__dict__, default=str))
    return Prepared(root, runs)


@dataclass
class Trial:
    """One kill and re-run of a job, and what differed from the never-killed run."""

    job: str
    seed: int
    aim: str
    killed: bool
    killed_after: float
    rerun_code: int
    problems: list[str]

    @property
    def converged(self) -> bool:
        return not self.problems


def run_trial(prepared: Prepared, job: str, seed: int, work: Path, keep: bool = False) -> Trial:
    """One trial of a prepared job: kill it at the moment `seed` draws, re-run it, compare."""
    step = next(s for s in STEPS if s.name == job)
    reference = prepared.runs[job]
    aim = choose_aim(random.Random(seed), reference.seconds, reference.points)
    return kill_and_rerun(
        job,
        step.argv(prepared.outputs()),
        prepared.folder(step.base) / "lake",
        reference,
        reference_fingerprint(prepared, job),
        aim,
        work / f"{job}-{seed}",
        seed=seed,
        keep=keep,
    )


def kill_and_rerun(
    job: str,
    argv: list[str],
    base: Path,
    reference: Run,
    want: dict[str, Any],
    aim: Aim,
    folder: Path,
    *,
    seed: int = 0,
    keep: bool = False,
) -> Trial:
    """Copy the lake `base` into `folder`, run `argv` killed at `aim`, re-run it to its end
    and compare the lake with the never-killed run's fingerprint `want`."""
    shutil.rmtree(folder, ignore_errors=True)
    copy_lake(base, folder / "lake")
    first = run_job(argv, folder, aim)
    rerun = run_job(argv, folder)
    problems = []
    if rerun.returncode != reference.returncode:
        problems.append(f"re-run exit {rerun.returncode}: {rerun.stderr.strip()[-600:]}")
    if first.returncode not in (0, -signal.SIGKILL):
        problems.append(f"killed run exit {first.returncode}: {first.stderr.strip()[-600:]}")
    if first.killed and first.leftover:
        problems.append(f"{first.leftover} processes of the killed job's group survived it")
    problems += _same_output(job, rerun.output, reference.output)
    problems += differences(fingerprint(folder / "lake"), want)
    if not problems and not keep:
        shutil.rmtree(folder)
    return Trial(job, seed, str(aim), first.killed, first.seconds, rerun.returncode, problems)


def _same_output(job: str, got: dict | None, want: dict | None) -> list[str]:
    """A validation's verdict is its output (its result id is new by design)."""
    if job == "validate" and (got or {}).get("success") != (want or {}).get("success"):
        return [f"validation verdict {got} != {want}"]
    return []


_REFERENCES: dict[tuple[Path, str], dict] = {}


def reference_fingerprint(prepared: Prepared, job: str) -> dict:
    """The never-killed run's fingerprint, computed once per job (cached on disk too)."""
    key = (prepared.root, job)
    if key not in _REFERENCES:
        cached = prepared.folder(job) / "fingerprint.json"
        if not cached.exists():
            cached.write_text(json.dumps(fingerprint(prepared.folder(job) / "lake")))
        _REFERENCES[key] = json.loads(cached.read_text())
    return _REFERENCES[key]


def summary_rows(trials: list[Trial]) -> list[dict[str, Any]]:
    """One row per job: trials, killed, converged and the seeds that did not converge."""
    rows = []
    for job in dict.fromkeys(t.job for t in trials):
        mine = [t for t in trials if t.job == job]
        failed = [str(t.seed) for t in mine if not t.converged]
        rows.append(
            {
                "job": job,
                "trials": len(mine),
                "killed": sum(t.killed for t in mine),
                "converged": sum(t.converged for t in mine),
                "failed seeds": ",".join(failed) or "-",
            }
        )
    return rows


def run_trials(
    prepared: Prepared, jobs: list[str], master: int, args: argparse.Namespace, deadline
) -> list[Trial]:
    """Trials round by round (trial 1 of every job, then trial 2, ...), so that a deadline
    leaves every job tried about as often; each prints its seed and verdict. With
    --parallel N, N trials run at once (each in its own lake copy)."""
    seeds = {}
    for job in jobs:
        rng = random.Random(f"{master}:{job}")
        drawn = [rng.randrange(10**9) for _ in range(args.trials)]
        seeds[job] = [args.replay] if args.replay else drawn
        reference_fingerprint(prepared, job)  # computed once, before threads share the cache
    rounds = list(zip(*seeds.values(), strict=True))[args.from_trial - 1 :]
    order = [
        (job, seed) for round_seeds in rounds for job, seed in zip(jobs, round_seeds, strict=True)
    ]
    trials: list[Trial] = []

    def one(job: str, seed: int) -> Trial | None:
        if deadline and time.monotonic() > deadline:
            return None
        trial = run_trial(prepared, job, seed, args.work / "trials", args.keep)
        verdict = "converged" if trial.converged else "NOT CONVERGED"
        how = f"killed after {trial.killed_after:.1f} s" if trial.killed else "ran to its end"
        lines = [f"chaos: {job} seed {seed}: {trial.aim}, {how}: {verdict}"]
        lines += [f"    {problem}" for problem in trial.problems]
        print("\n".join(lines), flush=True)
        return trial

    # Threads only wait on the trials' processes; results are kept in round order.
    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        for trial in pool.map(lambda pair: one(*pair), order):
            if trial is not None:
                trials.append(trial)
    if len(trials) < len(order):
        done = min(sum(t.job == job for t in trials) for job in jobs) + args.from_trial
        print(
            f"chaos: --minutes reached, {len(trials)} trials run; the rest of this run: "
            f"--seed {master} --from-trial {done}",
            flush=True,
        )
    return trials


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit 1 when a trial did not converge."""
    from reclake.cli.output import format_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per job (default 20)")
    parser.add_argument("--jobs", default=",".join(JOBS), help=f"default: {','.join(JOBS)}")
    parser.add_argument("--seed", type=int, help="master seed (default: drawn and printed)")
    parser.add_argument("--replay", type=int, help="run the one trial of this seed per job")
    parser.add_argument("--work", type=Path, default=REPO / ".chaos", help="cache and trials")
    parser.add_argument("--keep", action="store_true", help="keep the lakes of every trial")
    parser.add_argument("--minutes", type=float, help="start no trial after this many minutes")
    parser.add_argument(
        "--from-trial",
        type=int,
        default=1,
        help="start at this trial of every job (with --seed: go on with a stopped run)",
    )
    parser.add_argument("--parallel", type=int, default=1, help="trials run at once (default 1)")
    parser.add_argument(
        "--fresh", action="store_true", help="rebuild the prepared lakes (after a code change)"
    )
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    if args.from_trial < 1 or args.from_trial > args.trials:
        parser.error(f"--from-trial must be 1..{args.trials} (--trials)")
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown:
        parser.error(f"unknown jobs {unknown}; known: {', '.join(JOBS)}")
    master = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"chaos: master seed {master} (--seed {master} repeats this run)", flush=True)
    began = time.monotonic()
    root = args.work / data_key()
    if args.fresh:
        shutil.rmtree(root, ignore_errors=True)
    prepared = prepare(root, jobs, log=lambda m: print(f"chaos: {m}", flush=True))
    built = (root / "commit").read_text().strip() if (root / "commit").exists() else None
    if built is None:
        (root / "commit").write_text(built := head_commit())
    if built != head_commit():
        print(f"chaos: lakes prepared at {built}, now at {head_commit()}: --fresh rebuilds them")
    deadline = began + 60 * args.minutes if args.minutes else None
    trials = run_trials(prepared, jobs, master, args, deadline)
    print()
    print(
        format_table(summary_rows(trials), ["job", "trials", "killed", "converged", "failed seeds"])
    )
    print(f"\n{len(trials)} trials in {(time.monotonic() - began) / 60:.1f} min")
    return 0 if all(t.converged for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
