"""What the chaos suite compares between a lake whose job was killed and re-run and a lake whose
job was never killed: content, not versions. Read without a JVM (delta-rs, pyarrow).

- every Delta table: its rows, sorted, as a digest (versions, file names and layout differ);
- the snapshot registry as it folds: each snapshot by its key (table, version, validation
  id: snapshot ids hold the publish time), with rows, files, status, pin and `latest`; and
  whether every file of a live snapshot is still there;
- every per-hour record (`<folder>/date=D/HH.json`, the ingest's log) and the dims load
  marker, without the fields that a re-run rewrites by nature (table versions, durations);
- every JSON document in the lake must parse (none half written).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

REGISTRY = "_reclake/snapshots"
# Per-hour records (tile builds, labels, samples, window state, the ingest's log) and the
# dims load marker: what later jobs decide finality from. Validation, audit and maintenance
# records are named by the time they were written, so only their being readable is compared.
RECORD = re.compile(
    r"(/date=\d{4}-\d{2}-\d{2}/\d{2}|^_reclake/ingest_log/[^/]+|^_reclake/dims_loaded)\.json$"
)
# Keys of a log record that differ between two correct runs: the versions a run committed
# (a killed run's commits come first), how long it took and when it ran.
VOLATILE = re.compile(r"version|seconds|duration|elapsed|_at$|^at$|started|finished|_ms$")


def fingerprint(lake: Path) -> dict[str, Any]:
    """Everything the suite compares about the lake folder `lake` (see the module doc)."""
    lake = lake.resolve()
    tables = delta_tables(lake)
    return {
        "tables": {rel: table_digest(lake / rel) for rel in tables if rel != REGISTRY},
        "registry": registry_state(lake) if REGISTRY in tables else None,
        "records": hour_records(lake, tables),
        "unreadable": unreadable_documents(lake, tables),
    }


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Human-readable differences of two fingerprints (empty when they agree)."""
    out = []
    for part in ("tables", "records"):
        a, b = got[part], want[part]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{part[:-1]} {key}: {_short(a.get(key))} != {_short(b.get(key))}")
    if got["registry"] != want["registry"]:
        out.append(f"registry: {_short(got['registry'])} != {_short(want['registry'])}")
    out += [f"unreadable document {rel}" for rel in got["unreadable"]]
    return out


def delta_tables(lake: Path) -> list[str]:
    """Lake-relative paths of the Delta tables under `lake` (folders with a _delta_log)."""
    found = []
    for folder, dirs, _ in os.walk(lake):
        if "_delta_log" in dirs:
            found.append(Path(folder).relative_to(lake).as_posix())
            dirs.clear()  # a table holds no other table
    return sorted(found)


def table_digest(path: Path) -> dict[str, Any]:
    """Row count and a digest of the table's current rows, sorted (order-free)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = DeltaTable(path.as_uri()).to_pyarrow_table().to_pylist()
    except TableNotFoundError as exc:  # a _delta_log folder without a commit
        return {"error": str(exc).splitlines()[0]}
    lines = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
    return {"rows": len(rows), "sha256": digest}


def registry_state(lake: Path) -> dict[str, Any]:
    """The registry's folded state keyed by (table, version, validation id), with each live
    snapshot's missing files."""
    from reclake.config import Settings
    from reclake.snapshots.registry import load_state

    state = load_state(Settings(lake_root=lake.as_uri()))
    snaps = {}
    for snap in state.snapshots():
        key = "/".join(map(str, snap.key))
        files = sorted(f.path.removeprefix(lake.as_uri() + "/") for f in snap.files)
        missing = [f for f in files if snap.live and not (lake / f).exists()]
        snaps[key] = {
            "rows": snap.row_count,
            "files": len(files),
            "files_sha256": hashlib.sha256("\n".join(files).encode()).hexdigest()[:16],
            "status": snap.status,
            "pinned": snap.pinned,
            "interval": [snap.interval_start, snap.interval_end],
            "missing_files": missing,
        }
    latest = {t: "/".join(map(str, state.snapshot(sid).key)) for t, sid in state.latest.items()}
    return {"snapshots": snaps, "latest": latest}


def hour_records(lake: Path, tables: list[str]) -> dict[str, Any]:
    """Per-hour records and the dims marker by lake-relative path, volatile fields left out."""
    out = {}
    for rel in _documents(lake, tables):
        if RECORD.search(rel):
            try:
                out[rel] = stable(json.loads((lake / rel).read_text()))
            except ValueError:
                out[rel] = "unreadable"
    return out


def stable(doc: Any) -> Any:
    """A log record without the fields two correct runs disagree on (see VOLATILE)."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in sorted(doc.items()) if not VOLATILE.search(k)}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def unreadable_documents(lake: Path, tables: list[str]) -> list[str]:
    """Lake-relative paths of the JSON documents outside Delta logs that do not parse."""
    bad = []
    for rel in _documents(lake, tables):
        try:
            json.loads((lake / rel).read_text())
        except ValueError:
            bad.append(rel)
    return bad


def _documents(lake: Path, tables: list[str]) -> list[str]:
    """Visible .json files of the lake outside its tables and the landing area, sorted."""
    skip = {*tables, "landing"}
    out = []
    for folder, dirs, files in os.walk(lake):
        rel_folder = Path(folder).relative_to(lake).as_posix()
        dirs[:] = [d for d in dirs if _join(rel_folder, d) not in skip]
        out += [
            _join(rel_folder, f) for f in files if f.endswith(".json") and not f.startswith(".")
        ]
    return sorted(out)


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 300 else text[:297] + "..."
