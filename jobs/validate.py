"""Quality gate: validate one table version with its Great Expectations suite + reclake checks.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/validate.py \
        --table training_samples --start 2026-11-20T00:00Z --end 2026-11-21T00:00Z

Also runs as `python jobs/validate.py --table ...`. Prints which expectations and checks
failed, the result id, the Data Docs path, then a final JSON line
{"id", "table", "version", "success"}. Exit code 0 passed, 1 gate failed, 2 usage/IO error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--table T [--start S --end E] [--version V] [--baseline RESULT_ID]."""
    from reclake.cli.validate import add_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="logical table name")
    add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the gate; returns the process exit code."""
    from reclake.cli.validate import run_gate

    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    return run_gate(args, app_name="validate")


if __name__ == "__main__":
    sys.exit(main())
