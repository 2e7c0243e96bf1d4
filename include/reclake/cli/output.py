"""Shared CLI output: aligned text tables for people, JSON for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json(data: Any) -> str:
    """Serialise CLI output as stable, indented JSON."""
    return json.dumps(data, indent=2, sort_keys=True, default=_default)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Render rows as an aligned plain-text table with a header line."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def emit(data: Any, as_json: bool, columns: Sequence[str] | None = None) -> None:
    """Print rows (a list of dicts) as a table, or any data as JSON when --json is given."""
    if as_json:
        sys.stdout.write(to_json(data) + "\n")
    elif columns is not None:
        sys.stdout.write(format_table(data, columns) + "\n")
    else:
        for key, value in data.items():
            sys.stdout.write(f"{key}: {value}\n")


def add_json_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a sub-command the shared --json flag."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def guard(
    command: Callable[[argparse.Namespace], int], errors: tuple[type[BaseException], ...]
) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a user can act on into `error: ...` and exit code 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except errors as exc:
            # KeyError's str() adds quotes around the message.
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            sys.stderr.write(f"error: {message}\n")
            return 1

    return run
