"""Shared CLI output: aligned text tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
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
