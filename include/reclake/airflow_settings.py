"""Apply airflow_settings.yaml (Astro CLI format: connections, pools, variables) to the
Airflow metadata database, idempotently: existing objects are updated only when they differ.

    python -m reclake.airflow_settings apply [--file airflow_settings.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reclake.config import PROJECT_ROOT

DEFAULT_FILE = PROJECT_ROOT / "airflow_settings.yaml"
CONNECTION_FIELDS = ("conn_type", "host", "schema", "login", "password", "port", "extra")


@dataclass(frozen=True)
class Change:
    """What apply did to one object: kind (connection/pool/variable), its id, the action."""

    kind: str
    name: str
    action: str  # created | updated | unchanged


def load(path: Path | str = DEFAULT_FILE) -> dict[str, list[dict[str, Any]]]:
    """Read the file's `airflow:` section; missing lists become empty."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    section = document.get("airflow") or {}
    return {kind: list(section.get(kind) or []) for kind in ("connections", "pools", "variables")}


def _extra_json(value: Any) -> str | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return json.dumps(json.loads(str(value)), sort_keys=True)


def connection_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Connection model fields for one Astro-format entry (extra as canonical JSON)."""
    port = entry.get("conn_port")
    return {
        "conn_type": entry["conn_type"],
        "host": entry.get("conn_host") or None,
        "schema": entry.get("conn_schema") or None,
        "login": entry.get("conn_login") or None,
        "password": entry.get("conn_password") or None,
        "port": int(port) if port not in (None, "") else None,
        "extra": _extra_json(entry.get("conn_extra")),
    }


def _apply_connection(session: Any, entry: Mapping[str, Any]) -> Change:
    from airflow.models.connection import Connection
    from sqlalchemy import select

    conn_id = entry["conn_id"]
    wanted = connection_fields(entry)
    existing = session.scalars(select(Connection).where(Connection.conn_id == conn_id)).first()
    if existing is None:
        session.add(Connection(conn_id=conn_id, **wanted))
        return Change("connection", conn_id, "created")
    current = {name: getattr(existing, name) for name in CONNECTION_FIELDS}
    current["extra"] = _extra_json(current["extra"])
    if current == wanted:
        return Change("connection", conn_id, "unchanged")
    for name, value in wanted.items():
        setattr(existing, name, value)
    return Change("connection", conn_id, "updated")


def _apply_pool(session: Any, entry: Mapping[str, Any]) -> Change:
    from airflow.models.pool import Pool
    from sqlalchemy import select

    name, slots = entry["pool_name"], int(entry["pool_slot"])
    description = entry.get("pool_description") or ""
    existing = session.scalars(select(Pool).where(Pool.pool == name)).first()
    if existing is None:
        session.add(Pool(pool=name, slots=slots, description=description, include_deferred=False))
        return Change("pool", name, "created")
    if (existing.slots, existing.description or "") == (slots, description):
        return Change("pool", name, "unchanged")
    existing.slots, existing.description = slots, description
    return Change("pool", name, "updated")


def _apply_variable(session: Any, entry: Mapping[str, Any]) -> Change:
    from airflow.models.variable import Variable
    from sqlalchemy import select

    key = entry["variable_name"]
    value = entry.get("variable_value")
    # Structured values are stored as JSON, as `airflow variables set --json` would.
    value = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    existing = session.scalars(select(Variable).where(Variable.key == key)).first()
    if existing is None:
        session.add(Variable(key=key, val=value))
        return Change("variable", key, "created")
    if existing.val == value:
        return Change("variable", key, "unchanged")
    existing.val = value
    return Change("variable", key, "updated")


def apply(path: Path | str = DEFAULT_FILE) -> list[Change]:
    """Create or update every connection, pool and variable in the file; one transaction."""
    from airflow.utils.session import create_session

    wanted = load(path)
    changes: list[Change] = []
    with create_session() as session:
        changes += [_apply_connection(session, e) for e in wanted["connections"]]
        changes += [_apply_pool(session, e) for e in wanted["pools"]]
        changes += [_apply_variable(session, e) for e in wanted["variables"]]
    return changes


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: `apply [--file F]`; prints one line per object."""
    parser = argparse.ArgumentParser(prog="python -m reclake.airflow_settings", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    apply_parser = sub.add_parser("apply", help="apply the file to the Airflow database")
    apply_parser.add_argument("--file", default=str(DEFAULT_FILE), help="airflow_settings.yaml")
    args = parser.parse_args(argv)
    for change in apply(args.file):
        print(f"{change.kind:<10} {change.name:<24} {change.action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
