"""reclake.chaos crash points: inert unless aimed; aimed, they SIGKILL the whole process group
(a child process of the job dies with it), after tracing every pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from reclake import chaos

# Passes `commit` three times; a child sleeps in the same group and its pid is printed first.
SCRIPT = """
import subprocess, sys
from reclake import chaos
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
print(child.pid, flush=True)
for _ in range(3):
    chaos.point("commit")
chaos.point("document")
print("done", flush=True)
"""


def run(tmp_path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    trace = tmp_path / "trace.txt"
    clean = {k: v for k, v in os.environ.items() if k not in (chaos.KILL_AT, chaos.TRACE)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env, chaos.TRACE: str(trace)} if env else clean,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )
    return proc, trace.read_text().split() if trace.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_point_is_a_no_op_unless_set(tmp_path):
    proc, passed = run(tmp_path)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == "done"
    assert passed == []
    os.kill(int(proc.stdout.split()[0]), signal.SIGKILL)  # the child the script left


def test_the_aimed_pass_kills_the_whole_process_group(tmp_path):
    proc, passed = run(tmp_path, **{chaos.KILL_AT: "commit:2"})
    assert proc.returncode == -signal.SIGKILL
    assert "done" not in proc.stdout
    assert passed == ["commit", "commit"]  # traced up to the kill, nothing after it
    child = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_tracing_alone_counts_every_pass(tmp_path):
    proc, passed = run(tmp_path, **{chaos.KILL_AT: "commit:9"})
    assert proc.returncode == 0
    assert passed == ["commit", "commit", "commit", "document"]
    os.kill(int(proc.stdout.split()[0]), signal.SIGKILL)
