"""`reclake generate`: write realistic landing drops (events + dimensions) for an interval."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from reclake.cli.output import emit
from reclake.config import load_settings
from reclake.generator import DropCounts, GeneratorConfig, generate

COLUMNS = (
    "arrival_hour",
    "lines",
    "valid",
    "duplicates",
    "late",
    "too_late",
    "malformed",
    "bad_field",
    "files",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `generate` sub-command."""
    defaults = GeneratorConfig()
    p = sub.add_parser("generate", help="write synthetic landing drops for [start, end)")
    p.add_argument("--start", required=True, help="first arrival hour, e.g. 2026-11-20T00:00Z")
    p.add_argument("--end", required=True, help="end of the interval (exclusive, whole hour)")
    p.add_argument("--events-per-hour", type=int, default=defaults.events_per_hour)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--users", type=int, default=defaults.n_users)
    p.add_argument("--items", type=int, default=defaults.n_items)
    p.add_argument(
        "--fault-scale",
        type=float,
        default=1.0,
        help="multiplies every fault rate; 0 writes clean data",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_generate)


def _row(label: str, counts: DropCounts) -> dict[str, object]:
    return {
        "arrival_hour": label,
        "lines": counts.lines,
        "valid": counts.valid_events,
        "duplicates": counts.duplicate_lines,
        "late": counts.late_events,
        "too_late": counts.too_late_events,
        "malformed": counts.malformed_lines,
        "bad_field": counts.bad_field_lines,
        "files": counts.files,
    }


def _generate(args: argparse.Namespace) -> int:
    config = GeneratorConfig(
        seed=args.seed,
        events_per_hour=args.events_per_hour,
        n_users=args.users,
        n_items=args.items,
    ).with_fault_scale(args.fault_scale)
    began = time.perf_counter()
    report = generate(load_settings(), args.start, args.end, config)
    seconds = round(time.perf_counter() - began, 3)
    if args.json:
        emit({**asdict(report), "seconds": seconds}, True)
        return 0
    rows = [_row(h.arrival_hour, h.counts) for h in report.hours]
    rows.append(_row("total", report.total))
    emit(rows, False, COLUMNS)
    emit(
        {
            "bad_field_by_kind": report.total.bad_field_by_kind,
            "events_by_type": report.total.events_by_type,
            "files_written": len(report.files),
            "seconds": seconds,
        },
        False,
    )
    return 0
