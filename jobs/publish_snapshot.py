"""Publish a validated, audited table version as an immutable snapshot (the P of
write-audit-publish).

    python jobs/publish_snapshot.py --table training_samples --validation-id <result id> \
        --audit-id <audit id> --start 2026-11-20T00:00Z --end 2026-11-21T00:00Z

No JVM needed: the registry reads the Delta log with delta-rs. The version published is the
one the validation result names, so what was validated is exactly what gets published; an
audited table (training_samples) also needs the id of a passed point-in-time audit of that
version (jobs/audit.py). Prints a final JSON line with the snapshot id, version and row
count; exits 1 when the gate refuses (failed or mismatched validation, missing, failed or
mismatched audit: `latest` stays where it was), 2 on usage errors.
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
    from reclake.quality.results import load_result
    from reclake.snapshots import SnapshotGateError, publish
    from reclake.storagefault import StorageError
    from reclake.timeutil import iso, parse_utc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--validation-id", required=True)
    parser.add_argument("--audit-id", help="passed audit of the version (audited tables)")
    parser.add_argument("--start", help="data interval start (whole UTC hour)")
    parser.add_argument("--end", help="data interval end (whole UTC hour)")
    parser.add_argument("--pin", action="store_true", help="exempt from expiry")
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")

    settings = load_settings()
    try:
        result = load_result(settings, args.table, args.validation_id)
        interval = (iso(parse_utc(args.start)), iso(parse_utc(args.end))) if args.start else None
        snap = publish(
            settings,
            args.table,
            result.version,
            result.id,
            interval=interval,
            pinned=args.pin,
            audit_id=args.audit_id,
            require_audit=True,
        )
    except (KeyError, SnapshotGateError, StorageError) as exc:
        print(f"publish_snapshot: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "id": snap.id,
                "table": snap.table,
                "version": snap.version,
                "row_count": snap.row_count,
                "files": len(snap.files),
                "audit_id": (snap.audit or {}).get("id"),
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
