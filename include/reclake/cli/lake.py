"""`reclake config`: the effective configuration and where every table lives;
`reclake migrate-paths`: restate paths stored absolute relative to the lake (after a move)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from reclake.cli.output import emit
from reclake.config import load_settings
from reclake.tables import TABLES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `config` sub-command."""
    p = sub.add_parser("config", help="show the effective configuration and table locations")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_config)

    p = sub.add_parser(
        "migrate-paths",
        help="restate snapshot records and result documents stored with absolute paths "
        "relative to the lake (reads do not need it; see docs/snapshots.md)",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would change")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_migrate_paths)


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


def _migrate_paths(args: argparse.Namespace) -> int:
    from reclake.relocation import migrate_paths

    changed = migrate_paths(load_settings(), dry_run=args.dry_run)
    if args.json:
        emit({**changed, "dry_run": args.dry_run}, True)
        return 0
    rows = [{"kind": kind, "changed": name} for kind, names in changed.items() for name in names]
    verb = "would restate" if args.dry_run else "restated"
    sys.stdout.write(f"{verb} {len(rows)} stored path(s) relative to the lake\n")
    if rows:
        emit(rows, False, ["kind", "changed"])
    return 0
