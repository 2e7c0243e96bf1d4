"""Crash points for the chaos suite (`make chaos`, bench/chaos.py): inert unless it aims.

With RECLAKE_CHAOS_KILL_AT=<point>:<n> the n-th pass of <point> SIGKILLs this process's whole
process group (the Python driver, its JVM and Python workers), as a machine failure would:

- `commit`: right after a Delta commit of reclake's (a Spark replaceWhere or a registry
  append), before the job's next commit or its log record;
- `document`: a lake document's temp file is written, not yet moved into place.

RECLAKE_CHAOS_TRACE=<file> appends the name of each point passed, one a line, so the suite
learns how many points a job passes before aiming at one. The suite starts each job in a
process group of its own; set neither variable anywhere else.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "RECLAKE_CHAOS_KILL_AT"
TRACE = "RECLAKE_CHAOS_TRACE"
POINTS = ("commit", "document")

_passes: dict[str, int] = {}


def point(name: str) -> None:
    """Pass crash point `name`: a no-op unless RECLAKE_CHAOS_KILL_AT or _TRACE is set."""
    aim, trace = os.environ.get(KILL_AT), os.environ.get(TRACE)
    if not aim and not trace:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as out:
            out.write(name + "\n")
    if aim == f"{name}:{_passes[name]}":
        os.killpg(os.getpgrp(), signal.SIGKILL)
