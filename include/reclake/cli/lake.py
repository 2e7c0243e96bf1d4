"""`reclake config`: the effective configuration and where every table lives."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from reclake.cli.output import emit
from reclake.config import load_settings
from reclake.tables import TABLES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `config` sub-command."""
    p = sub.add_parser("config", help="show the effective configuration and table locations")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_config)


def _config(args: argparse.Namespace) -> int:
    settings = load_settings()
    data = {k: str(v) for k, v in asdict(settings).items()}
    data["landing_uri"] = settings.landing_uri
    data["tables"] = {name: spec.uri(settings) for name, spec in TABLES.items()}
    if args.json:
        emit(data, True)
        return 0
    tables = data.pop("tables")
    emit(data, False)
    emit([{"table": n, "location": u} for n, u in tables.items()], False, ["table", "location"])
    return 0
