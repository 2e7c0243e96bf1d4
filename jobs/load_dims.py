"""Reload dims/users and dims/items from the complete dimension drops in the landing area.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/load_dims.py [--force]

Also runs as `python jobs/load_dims.py`. Dimensions are full snapshots, so the job takes no
interval: each run replaces both tables (and quarantine/dims) from every file of the drops.
When neither the drops (files, sizes, mtimes) nor the tables changed since the last load, it
skips the reload without starting Spark (--force reloads anyway). Prints a one-line JSON
summary; exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    from reclake.config import load_settings
    from reclake.features.dims import DimsError, dims_up_to_date, load_dims, load_summary
    from reclake.jobrun import storage_fault

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="reload even if nothing changed")
    args = parser.parse_args(argv)
    settings = load_settings()
    last = None if args.force else dims_up_to_date(settings)
    if last is not None:
        print(json.dumps({"skipped": "drops and tables unchanged", **last["versions"]}))
        return 0
    from reclake.spark import get_spark

    spark = get_spark("load_dims", settings)
    try:
        results = load_dims(spark, settings)
    except DimsError as exc:
        print(f"load_dims: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        return storage_fault("load_dims", exc, settings)
    summary = {name: {"rows": r.rows, "version": r.version} for name, r in results.items()}
    # Records that lost to a later one of their key are counted, not lost silently.
    summary["superseded"] = load_summary(settings)["superseded"]
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
