"""Comparing two snapshots: rows, schema, per-column numeric statistics and files."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reclake.config import Settings
from reclake.snapshots.model import Snapshot
from reclake.snapshots.read import arrow_schema, read_arrow_dataset
from reclake.snapshots.registry import resolve


def _field_types(schema_json: str) -> dict[str, str]:
    """Column name -> Delta type (complex types as compact JSON)."""
    fields = json.loads(schema_json)["fields"]
    return {
        f["name"]: f["type"] if isinstance(f["type"], str) else json.dumps(f["type"])
        for f in fields
    }


def schema_changes(schema_a: str, schema_b: str) -> dict[str, list[dict[str, str]]]:
    """Columns added, removed and retyped from Delta schema JSON a to b."""
    a, b = _field_types(schema_a), _field_types(schema_b)
    return {
        "added": [{"column": c, "type": b[c]} for c in b if c not in a],
        "removed": [{"column": c, "type": a[c]} for c in a if c not in b],
        "changed": [{"column": c, "a": a[c], "b": b[c]} for c in a if c in b and a[c] != b[c]],
    }


def schema_change_rows(changes: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """schema_changes() as one row per change (change, column, type or "a -> b"), for tables."""
    return [
        {"change": kind, "column": c["column"], "type": c.get("type") or f"{c['a']} -> {c['b']}"}
        for kind, items in changes.items()
        for c in items
    ]


def numeric_columns(schema: pa.Schema) -> list[str]:
    """Integer and floating point columns: the ones diff computes statistics for."""
    return [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]


def column_stats(table: pa.Table) -> dict[str, dict[str, Any]]:
    """mean / min / max / null_count of every column of `table` (numeric columns expected)."""
    stats = {}
    for name in table.column_names:
        col = table.column(name)
        minmax = pc.min_max(col).as_py() if len(col) else {"min": None, "max": None}
        mean = pc.mean(col).as_py() if len(col) else None
        stats[name] = {
            "mean": mean,
            "min": minmax["min"],
            "max": minmax["max"],
            "null_count": col.null_count,
        }
    return stats


def file_changes(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """Data files only in a (removed), only in b (added), and how many both share."""
    files_a = {f.path: f.size for f in a.files}
    files_b = {f.path: f.size for f in b.files}
    added = sorted(set(files_b) - set(files_a))
    removed = sorted(set(files_a) - set(files_b))
    return {
        "added": added,
        "removed": removed,
        "unchanged": len(set(files_a) & set(files_b)),
        "bytes_added": sum(files_b[p] for p in added),
        "bytes_removed": sum(files_a[p] for p in removed),
    }


def diff(settings: Settings, ref_a: str, ref_b: str) -> dict[str, Any]:
    """What changed from snapshot a to b: rows, schema, numeric column stats, files."""
    a, b = resolve(settings, ref_a), resolve(settings, ref_b)
    stats_a, stats_b = _numeric_stats(a), _numeric_stats(b)
    return {
        "a": {"id": a.id, "table": a.table, "version": a.version},
        "b": {"id": b.id, "table": b.table, "version": b.version},
        "row_count": {"a": a.row_count, "b": b.row_count, "delta": b.row_count - a.row_count},
        "schema": schema_changes(a.schema, b.schema),
        "columns": {
            c: {"a": stats_a.get(c), "b": stats_b.get(c)}
            for c in [*stats_a, *(c for c in stats_b if c not in stats_a)]
        },
        "files": file_changes(a, b),
    }


def _numeric_stats(snap: Snapshot) -> dict[str, dict[str, Any]]:
    columns = numeric_columns(arrow_schema(snap))
    if not columns:
        return {}
    return column_stats(read_arrow_dataset(snap, columns=columns).to_table())
