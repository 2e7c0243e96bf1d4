"""`reclake snapshots`: list, show, diff, publish, rollback, expire, pin and unpin snapshots."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from reclake.cli.output import add_json_flag, emit, guard
from reclake.config import load_settings

LIST_COLUMNS = ["id", "version", "rows", "files", "bytes", "created_at", "expires_at", "flags"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `snapshots` sub-command and its actions."""
    p = sub.add_parser("snapshots", help="immutable, validated table snapshots")
    actions = p.add_subparsers(dest="action", required=True)

    a = actions.add_parser("list", help="snapshots in publish order (live only unless --all)")
    a.add_argument("--table", help="only this table")
    a.add_argument("--all", action="store_true", help="include expired snapshots")
    add_json_flag(a).set_defaults(func=_guard(_list))

    a = actions.add_parser("show", help="one snapshot: files, bytes, schema, validation")
    a.add_argument("ref", help="<table>@latest, <table>@<id> or <id>")
    add_json_flag(a).set_defaults(func=_guard(_show))

    a = actions.add_parser("diff", help="rows, schema, numeric stats and files from A to B")
    a.add_argument("a")
    a.add_argument("b")
    add_json_flag(a).set_defaults(func=_guard(_diff))

    a = actions.add_parser("drift", help="per-feature null rate, mean and PSI against a baseline")
    a.add_argument("ref")
    a.add_argument("--against", help="baseline snapshot (default: the previous live one)")
    a.add_argument("--bins", type=int, default=20, help="histogram bins (default 20)")
    add_json_flag(a).set_defaults(func=_guard(_drift))

    a = actions.add_parser("publish", help="publish a validated table version as a snapshot")
    a.add_argument("table")
    a.add_argument("--version", type=int, required=True, help="Delta version to publish")
    a.add_argument("--validation-id", required=True, help="id of the passing validation result")
    a.add_argument("--audit-id", help="id of a passed audit of the version (checked when given)")
    a.add_argument("--pin", action="store_true", help="protect from expiry")
    a.add_argument("--start", help="data interval start (default: from the validation)")
    a.add_argument("--end", help="data interval end (default: from the validation)")
    a.add_argument("--retention-days", type=float, help="default: RECLAKE_SNAPSHOT_RETENTION_DAYS")
    add_json_flag(a).set_defaults(func=_guard(_publish))

    a = actions.add_parser("rollback", help="move <table>@latest back (or --to an id)")
    a.add_argument("table")
    a.add_argument("--to", help="snapshot id to point latest at")
    a.add_argument("--dry-run", action="store_true", help="show where latest would point")
    add_json_flag(a).set_defaults(func=_guard(_rollback))

    a = actions.add_parser("expire", help="expire snapshots by retention policy")
    a.add_argument("--table", help="only this table (default: all)")
    a.add_argument("--keep-last", type=int, default=5, help="always keep the newest N live")
    a.add_argument("--older-than-days", type=float, help="only expire those older than D days")
    a.add_argument("--dry-run", action="store_true", help="show what would expire")
    add_json_flag(a).set_defaults(func=_guard(_expire))

    for name, text in (("pin", "protect a snapshot from expiry"), ("unpin", "allow expiry")):
        a = actions.add_parser(name, help=text)
        a.add_argument("ref")
        add_json_flag(a).set_defaults(func=_guard(_pin if name == "pin" else _unpin))


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The registry's expected errors become a message and exit code 1."""
    from reclake.snapshots import SnapshotExpired, SnapshotGateError, SnapshotNotFound

    return guard(command, (SnapshotNotFound, SnapshotExpired, SnapshotGateError, KeyError))


def _row(snap: Any, latest: str | None) -> dict[str, Any]:
    flags = [f for f, on in (("latest", snap.id == latest), ("pinned", snap.pinned)) if on]
    if not snap.live:
        flags.append("expired")
    return {
        "id": snap.id,
        "table": snap.table,
        "version": snap.version,
        "rows": snap.row_count,
        "files": len(snap.files),
        "bytes": snap.size_bytes,
        "created_at": snap.created_at,
        "expires_at": snap.expires_at,
        "pinned": snap.pinned,
        "status": snap.status,
        "latest": snap.id == latest,
        "flags": ",".join(flags),
    }


def _list(args: argparse.Namespace) -> int:
    from reclake.snapshots import latest_id, list_snapshots

    settings = load_settings()
    snaps = list_snapshots(settings, args.table, include_expired=args.all)
    latest = {t: latest_id(settings, t) for t in {s.table for s in snaps}}
    rows = [_row(s, latest[s.table]) for s in snaps]
    if args.json:
        emit(rows, True)
    elif not rows:
        sys.stdout.write("no snapshots\n")
    else:
        emit(rows, False, ["table", *LIST_COLUMNS])
    return 0


def _show(args: argparse.Namespace) -> int:
    from reclake.quality.audit_results import list_audits
    from reclake.snapshots import latest_id, resolve

    settings = load_settings()
    snap = resolve(settings, args.ref, allow_expired=True)
    # Audits of the snapshot's version: the one that allowed the publish and later ones.
    audits = list_audits(settings, snap.table, snap.version)
    if args.json:
        emit(
            {
                **asdict(snap),
                "latest": snap.id == latest_id(settings, snap.table),
                "audits": [asdict(a) for a in audits],
            },
            True,
        )
        return 0
    info = _row(snap, latest_id(settings, snap.table))
    for key in ("files", "bytes", "flags", "created_at", "expires_at"):
        info.pop(key)
    info.update(
        {
            "files": len(snap.files),
            "bytes": snap.size_bytes,
            "table_uri": snap.table_uri,
            "partition_by": ",".join(snap.partition_by) or "-",
            "interval": f"[{snap.interval_start}, {snap.interval_end})",
            "validation_id": snap.validation_id,
            "audit": _audit_line(snap.audit),
            "created_at": snap.created_at,
            "expires_at": snap.expires_at,
        }
    )
    emit(info, False)
    columns = [
        {"column": f["name"], "type": _type(f["type"]), "nullable": f["nullable"]}
        for f in json.loads(snap.schema)["fields"]
    ]
    _show_audits(audits)
    sys.stdout.write("\nschema:\n")
    emit(columns, False, ["column", "type", "nullable"])
    return 0


def _audit_line(audit: dict[str, Any] | None) -> str:
    if not audit:
        return "-"
    verdict = "passed" if audit["success"] else "FAILED"
    return (
        f"{audit['id']} {verdict} ({audit['rows_checked']} rows recomputed from bronze, "
        f"sample {audit['sample_size']}, seed {audit['seed']})"
    )


def _show_audits(audits: list[Any]) -> None:
    """Each audit of the version in one line; the newest failed one with its full report."""
    from reclake.quality.audit_results import report_lines

    if not audits:
        return
    sys.stdout.write("\naudits of this version:\n")
    for a in audits:
        sys.stdout.write(f"  {_audit_line(a.summary())} at {a.created_at}\n")
    failed = [a for a in audits if not a.success]
    if failed:
        sys.stdout.write("\nnewest failed audit:\n")
        sys.stdout.write("\n".join(report_lines(failed[-1])) + "\n")


def _diff(args: argparse.Namespace) -> int:
    from reclake.snapshots import diff

    d = diff(load_settings(), args.a, args.b)
    if args.json:
        emit(d, True)
        return 0
    rc, files = d["row_count"], d["files"]
    sys.stdout.write(
        f"a: {d['a']['id']} (v{d['a']['version']})\nb: {d['b']['id']} (v{d['b']['version']})\n"
        f"rows: {rc['a']} -> {rc['b']} ({rc['delta']:+d})\n"
        f"files: +{len(files['added'])} ({files['bytes_added']} bytes) "
        f"-{len(files['removed'])} ({files['bytes_removed']} bytes) "
        f"={files['unchanged']}\n"
    )
    from reclake.snapshots.diff import schema_change_rows

    changes = schema_change_rows(d["schema"])
    sys.stdout.write("\nschema changes:\n" if changes else "\nschema: unchanged\n")
    if changes:
        emit(changes, False, ["change", "column", "type"])
    stats = [
        {"column": col, "stat": stat, "a": (s["a"] or {}).get(stat), "b": (s["b"] or {}).get(stat)}
        for col, s in d["columns"].items()
        for stat in ("mean", "min", "max", "null_count")
    ]
    if stats:
        sys.stdout.write("\nnumeric columns:\n")
        emit(stats, False, ["column", "stat", "a", "b"])
    return 0


def _drift(args: argparse.Namespace) -> int:
    from reclake.snapshots.profile import profile

    p = profile(load_settings(), args.ref, args.against, args.bins)
    if args.json:
        emit({**p, "features": [{**asdict(f), **_drift_row(f)} for f in p["features"]]}, True)
        return 0
    base = p["baseline"]
    sys.stdout.write(
        f"snapshot: {p['snapshot']['id']} ({p['snapshot']['rows']} rows)\n"
        f"baseline: {base['id'] + ' (' + str(base['rows']) + ' rows)' if base else '-'}\n"
    )
    rows = [_drift_row(f) for f in p["features"]]
    emit(rows, False, list(rows[0]) if rows else ["column"])
    return 0


def _drift_row(f: Any) -> dict[str, Any]:
    """One feature's line: null rates, means and PSI against the baseline."""
    return {
        "column": f.column,
        "null_rate": round(f.null_rate, 4),
        "baseline_null_rate": _round(f.baseline_null_rate),
        "mean": _round(f.stats["mean"]),
        "baseline_mean": _round((f.baseline_stats or {}).get("mean")),
        "psi": f.psi,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _publish(args: argparse.Namespace) -> int:
    from reclake.snapshots import publish

    if (args.start is None) != (args.end is None):
        sys.stderr.write("error: give both --start and --end, or neither\n")
        return 2
    snap = publish(
        load_settings(),
        args.table,
        args.version,
        args.validation_id,
        interval=(args.start, args.end) if args.start else None,
        retention_days=args.retention_days,
        pinned=args.pin,
        # Checked when given; only the write-audit-publish job requires one (an operator
        # may publish by hand, the record then shows no audit).
        audit_id=args.audit_id,
    )
    return _done(args, f"published {snap.id} ({snap.row_count} rows) as {snap.table}@latest", snap)


def _rollback(args: argparse.Namespace) -> int:
    from reclake.snapshots import rollback
    from reclake.snapshots.registry import rollback_target

    if args.dry_run:
        snap = rollback_target(load_settings(), args.table, args.to)
        return _done(args, f"would move {snap.table}@latest -> {snap.id} (v{snap.version})", snap)
    snap = rollback(load_settings(), args.table, args.to)
    return _done(args, f"{snap.table}@latest -> {snap.id} (v{snap.version})", snap)


def _expire(args: argparse.Namespace) -> int:
    from reclake.snapshots import expire

    snaps = expire(
        load_settings(),
        args.table,
        keep_last=args.keep_last,
        older_than_days=args.older_than_days,
        dry_run=args.dry_run,
    )
    rows = [_row(s, None) for s in snaps]
    if args.json:
        emit({"dry_run": args.dry_run, "expired": rows}, True)
        return 0
    verb = "would expire" if args.dry_run else "expired"
    sys.stdout.write(f"{verb} {len(rows)} snapshot(s)\n")
    if rows:
        emit(rows, False, ["table", "id", "version", "created_at"])
    return 0


def _pin(args: argparse.Namespace) -> int:
    from reclake.snapshots import pin

    snap = pin(load_settings(), args.ref)
    return _done(args, f"pinned {snap.id}", snap)


def _unpin(args: argparse.Namespace) -> int:
    from reclake.snapshots import unpin

    snap = unpin(load_settings(), args.ref)
    return _done(args, f"unpinned {snap.id}", snap)


def _done(args: argparse.Namespace, message: str, snap: Any) -> int:
    if args.json:
        row = _row(snap, None)
        emit({k: v for k, v in row.items() if k not in ("latest", "flags")}, True)
    else:
        sys.stdout.write(message + "\n")
    return 0


def _type(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
