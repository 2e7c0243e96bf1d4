"""`reclake doctor`: check the lake's storage (space, permissions, Delta logs, data files,
snapshot files, reclake's documents) and say what to do about each fault; exit 1 on any."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from reclake.cli.output import add_json_flag, emit, guard
from reclake.config import load_settings

COLUMNS = ["table", "location", "status", "problem", "detail"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `doctor` sub-command."""
    p = sub.add_parser(
        "doctor",
        help="check the lake's storage and explain each fault (exit 1 when there is one)",
    )
    p.add_argument(
        "--repair",
        metavar="TABLE",
        help="apply the recovery that needs no backup to TABLE (what `doctor` proposes)",
    )
    add_json_flag(p).set_defaults(func=guard(_doctor, (KeyError, ValueError)))


def _doctor(args: argparse.Namespace) -> int:
    from reclake.doctor import examine, problems, repair, table_folder

    settings = load_settings()
    if args.repair:
        table_folder(args.repair)  # an unknown name fails before anything is touched
        done = repair(settings, args.repair)
        for line in done or [f"{args.repair}: nothing to repair"]:
            sys.stdout.write(f"{line}\n")
    findings = examine(settings)
    found = problems(findings)
    if args.json:
        emit({"findings": [asdict(f) for f in findings], "problems": len(found)}, True)
        return 1 if found else 0
    emit([asdict(f) for f in findings], False, COLUMNS)
    for f in found:
        sys.stdout.write(f"\n{f.table}: {f.detail}\n  what to do: {f.fix}\n")
    sys.stdout.write(
        f"\n{len(found)} problem(s) found\n" if found else "\nok: no storage fault found\n"
    )
    return 1 if found else 0
