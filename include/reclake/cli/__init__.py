"""`reclake` command line: one entry point, a sub-command module per area."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes register(subparsers); a sub-command sets `func(args) -> int`.
COMMAND_MODULES = (
    "reclake.cli.lake",
    "reclake.cli.generate",
    "reclake.cli.ingest",
    "reclake.cli.bulk_import",
    "reclake.cli.validate",
    "reclake.cli.audit",
    "reclake.cli.snapshots",
    "reclake.cli.maintenance",
    "reclake.cli.cache",
    "reclake.cli.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="reclake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from reclake.config import SettingsError
    from reclake.storagefault import describe
    from reclake.timeutil import IntervalError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (SettingsError, IntervalError) as exc:
        # A bad RECLAKE_* value or interval is a usage error like a bad argument: exit 2.
        print(f"reclake: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A full disk, a denied permission or a damaged table: one line naming it, exit 1.
        fault = describe(exc, _lake_root())
        if fault is None:
            raise
        print(f"reclake: error: {fault}", file=sys.stderr)
        return 1


def _lake_root() -> str:
    from reclake.config import load_settings

    return load_settings().lake_root


if __name__ == "__main__":
    sys.exit(main())
