"""Validation suites: the reviewed files in include/expectations/ plus the expectations derived
from what the code already declares (table schemas, keys, feature kinds).

A suite file (include/expectations/<table>.json) holds only what needs a human decision:
extra GX expectations, label-rate bounds, statistics / drift columns and check thresholds.
Shared thresholds live in include/expectations/_defaults.json; a suite file overrides them
key by key. Pure: no Spark and no GX here (GX objects are built in gx_runner).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reclake.tables import TableSpec

DEFAULTS_FILE = "_defaults.json"

# Spark SQL DDL type -> the Spark type class name GX reports for a Spark column.
_SPARK_TYPES = {
    "BIGINT": "LongType",
    "LONG": "LongType",
    "INT": "IntegerType",
    "INTEGER": "IntegerType",
    "SMALLINT": "ShortType",
    "TINYINT": "ByteType",
    "STRING": "StringType",
    "BOOLEAN": "BooleanType",
    "DOUBLE": "DoubleType",
    "FLOAT": "FloatType",
    "TIMESTAMP": "TimestampType",
    "TIMESTAMP_NTZ": "TimestampNTZType",
    "DATE": "DateType",
    "ARRAY": "ArrayType",
    "STRUCT": "StructType",
    "MAP": "MapType",
    "DECIMAL": "DecimalType",
}
NUMERIC_TYPES = frozenset(
    {"LongType", "IntegerType", "ShortType", "ByteType", "DoubleType", "FloatType", "DecimalType"}
)
_COLUMN_DEF = re.compile(r"^(\w+)\s+(.+?)(\s+NOT\s+NULL)?$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Column:
    """A declared column: name, GX (Spark class) type name, and whether it is NOT NULL."""

    name: str
    spark_type: str | None
    not_null: bool


@dataclass(frozen=True)
class Suite:
    """Everything validate needs for one table: GX expectation configs plus reclake checks."""

    table: str
    expectations: list[dict[str, Any]]  # GX 1.x expectation configs: {"type", "kwargs"}
    checks: dict[str, dict[str, Any]]  # check name -> thresholds
    labels: dict[str, dict[str, float | None]]  # label column -> {"min", "max"} rate bounds
    statistics_columns: list[str]  # numeric columns whose distribution is recorded
    # Declared per-column rules checked by reclake in one pass: {"rule", "column", "min", "max"}
    column_rules: list[dict[str, Any]] = field(default_factory=list)
    result_format: str = "SUMMARY"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def drift_columns(self) -> list[str]:
        """Columns whose distribution is compared with the last published snapshot."""
        return list(self.checks.get("distribution_drift", {}).get("columns") or [])


def parse_ddl(ddl: str) -> list[Column]:
    """Columns of a DDL column list ("a BIGINT NOT NULL, b ARRAY<STRUCT<x: INT, y: INT>>")."""
    columns = []
    for part in _split_top_level(ddl):
        match = _COLUMN_DEF.match(" ".join(part.split()))
        if not match:
            raise ValueError(f"cannot parse column definition {part!r}")
        name, dtype, not_null = match.groups()
        base = re.split(r"[<(]", dtype.strip(), maxsplit=1)[0].upper()
        columns.append(Column(name, _SPARK_TYPES.get(base), bool(not_null)))
    return columns


def _split_top_level(ddl: str) -> list[str]:
    """Split on commas outside <...> and (...) (nested types hold commas too)."""
    parts, depth, current = [], 0, []
    for ch in ddl:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def declared_ddl(table: str) -> str | None:
    """The schema the code declares for a table (None when it declares none)."""
    from reclake import tables
    from reclake.features.definitions import DEFINITIONS

    sources = {
        "events": lambda: tables.BRONZE_EVENTS_DDL,
        "quarantine_events": lambda: tables.QUARANTINE_EVENTS_DDL,
        "users": lambda: tables.USERS_DDL,
        "items": lambda: tables.ITEMS_DDL,
        "quarantine_dims": lambda: tables.QUARANTINE_DIMS_DDL,
        "impressions_labeled": lambda: tables.IMPRESSIONS_LABELED_DDL,
        "user_tiles_hourly": lambda: DEFINITIONS.tile_ddl(DEFINITIONS.entity("user")),
        "item_tiles_hourly": lambda: DEFINITIONS.tile_ddl(DEFINITIONS.entity("item")),
        "training_samples": DEFINITIONS.samples_ddl,
    }
    source = sources.get(table)
    return source() if source else None


# Share of rows a count/count rate may have above 1 (see feature_ranges).
RATE_ABOVE_ONE_TOLERANCE = 0.05


def feature_ranges(table: str) -> list[dict[str, Any]]:
    """Range rules of the declared sample features: counts, sums and ratios >= 0; count/count
    rates <= 1 for all but RATE_ABOVE_ONE_TOLERANCE of the rows.

    Actions count in the hour they happen, impressions in theirs: a skip in the window whose
    impression fell before it (or beyond the allowed lateness, or before the lake began) can
    lift a rate above 1 for a few samples, so that bound is a tolerance, not a strict rule.
    A ratio whose numerator is a sum (avg_watch_ms) is a mean: only >= 0 holds.
    """
    if table != "training_samples":
        return []
    from reclake.features.definitions import (
        DEFINITIONS,
        SEQUENCE_LEN_COLUMN,
        sample_feature_columns,
        window_column,
    )

    kinds = {a.name: a.kind for a in DEFINITIONS.aggregations}
    means = {
        window_column(e, r.name, w)
        for e in DEFINITIONS.entities
        for w in DEFINITIONS.windows
        for r in DEFINITIONS.ratios
        if kinds[r.numerator] != "count"
    }
    out = []
    for col in sample_feature_columns():
        out.append(_range(col.name, 0, None))
        if col.kind == "ratio" and col.name not in means:
            out.append(_range(col.name, None, 1, mostly=1 - RATE_ABOVE_ONE_TOLERANCE))
    out.append(_range(SEQUENCE_LEN_COLUMN, 0, DEFINITIONS.sequence_length))
    return out


def nonnegative(columns: list[Column]) -> list[dict[str, Any]]:
    """`>= 0` for every numeric column (tiles hold only ids, counts and sums)."""
    return [_range(c.name, 0, None) for c in columns if c.spark_type in NUMERIC_TYPES]


def not_null_rules(spec: TableSpec, columns: list[Column]) -> list[dict[str, Any]]:
    """Non-null rules of the declared NOT NULL columns (keys are GX expectations instead)."""
    return [
        {"rule": "not_null", "column": c.name}
        for c in columns
        if c.not_null and c.name not in spec.keys
    ]


def schema_expectations(spec: TableSpec, columns: list[Column]) -> list[dict[str, Any]]:
    """GX expectations of a schema: exact column set, column types, non-null unique key.

    The other NOT NULL columns and the feature ranges are checked by reclake in one Spark pass
    (column_rules): GX runs one query per column, too slow for 100-column sample tables.
    """
    out = [
        _expectation(
            "expect_table_columns_to_match_set",
            column_set=[c.name for c in columns],
            exact_match=True,
        )
    ]
    out += [
        _expectation("expect_column_values_to_be_of_type", column=c.name, type_=c.spark_type)
        for c in columns
        if c.spark_type
    ]
    out += [_expectation("expect_column_values_to_not_be_null", column=name) for name in spec.keys]
    return out + key_expectations(spec)


def key_expectations(spec: TableSpec) -> list[dict[str, Any]]:
    """Uniqueness of the table's key: one column, or the compound key (tiles, quarantine)."""
    if len(spec.keys) == 1:
        return [_expectation("expect_column_values_to_be_unique", column=spec.keys[0])]
    return [_expectation("expect_compound_columns_to_be_unique", column_list=list(spec.keys))]


def load_suite(spec: TableSpec, expectations_dir: Path) -> Suite:
    """The full suite of a table: derived expectations + its reviewed file over the defaults."""
    defaults = _read(expectations_dir / DEFAULTS_FILE)
    path = expectations_dir / f"{spec.name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no suite file for table {spec.name!r}: {path}")
    data = _read(path)
    ddl = declared_ddl(spec.name)
    columns = parse_ddl(ddl) if ddl else []
    derived = schema_expectations(spec, columns) if ddl else key_expectations(spec)
    rules = not_null_rules(spec, columns) + feature_ranges(spec.name)
    checks = {
        name: {**conf, **data.get("checks", {}).get(name, {})}
        for name, conf in defaults.get("checks", {}).items()
    }
    if ddl and data.get("nonnegative_numeric"):
        rules += nonnegative(columns)
    drift = checks.get("distribution_drift", {})
    stats = list(data.get("statistics_columns", []))
    return Suite(
        table=spec.name,
        expectations=merge_expectations(derived, data.get("expectations", [])),
        checks=checks,
        labels=data.get("labels", {}),
        statistics_columns=list(dict.fromkeys([*stats, *(drift.get("columns") or [])])),
        column_rules=rules,
        result_format=data.get("result_format", defaults.get("result_format", "SUMMARY")),
        meta={"file": str(path), "notes": data.get("notes", "")},
    )


def merge_expectations(
    derived: list[dict[str, Any]], reviewed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Derived expectations, each replaced by a reviewed one of the same type and column."""
    merged = {_identity(e): e for e in derived}
    for e in reviewed:
        merged[_identity(e)] = {"type": e["type"], "kwargs": dict(e.get("kwargs", {}))}
    return list(merged.values())


def _identity(expectation: dict[str, Any]) -> tuple[str, str]:
    kwargs = expectation.get("kwargs", {})
    target = kwargs.get("column") or ",".join(kwargs.get("column_list", [])) or ""
    return expectation["type"], target


def _range(
    column: str, low: float | None, high: float | None, mostly: float = 1.0
) -> dict[str, Any]:
    """A range rule; with mostly < 1 that share of rows must hold it, not every row."""
    rule = {"rule": "range", "column": column, "min": low, "max": high}
    if mostly < 1.0:
        rule["mostly"] = mostly
    return rule


def _expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)
