"""Point-in-time audit: recompute a seeded, stratified sample of a table version's rows from
bronze and the dimensions, and require exact equality (the A of write-audit-publish).

    python jobs/audit.py --table training_samples --validation-id <result id> \
        [--sample 1000] [--seed 0]

Audits the version (and data interval) the validation result names, or `--version V`
[--start S --end E]. No JVM: delta-rs lists the files, pyarrow and numpy draw and
recompute. Prints the report (mismatched
rows with feature, expected and got; counts per feature), the audit id and its Data Docs
page, then a final JSON line {"id", "table", "version", "success", ...}. Exit code 0 passed,
1 mismatches, 2 usage/IO error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--table T (--validation-id ID | --version V) [--start S --end E] [--sample N] [--seed S]."""
    from reclake.cli.audit import add_sample_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="logical table name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--validation-id", help="audit the version this validation result names")
    which.add_argument("--version", type=int, help="audit this Delta version")
    parser.add_argument("--start", help="data interval start (default: the validation's)")
    parser.add_argument("--end", help="data interval end, exclusive")
    add_sample_arguments(parser)
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the audit; returns the process exit code."""
    from reclake.cli.audit import run_audit, usage_error
    from reclake.config import load_settings
    from reclake.quality.audit import check_auditable
    from reclake.quality.results import load_result

    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    settings = load_settings()
    version, start, end = args.version, args.start, args.end
    try:
        check_auditable(args.table, args.sample)
        if args.validation_id:
            validation = load_result(settings, args.table, args.validation_id)
            version = validation.version
            if start is None:
                start, end = validation.interval_start, validation.interval_end
    except (KeyError, ValueError) as exc:
        return usage_error("audit", exc)
    return run_audit(
        settings,
        name="audit",
        table_name=args.table,
        version=version,
        start=start,
        end=end,
        sample_size=args.sample,
        seed=args.seed,
        validation_id=args.validation_id,
    )


if __name__ == "__main__":
    code = main()
    # pyarrow's and delta-rs' native thread pools outlive the work: an interpreter torn down
    # under them has aborted at exit ("terminate called without an active exception") after
    # everything was written. The result is saved and printed: leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
