"""Table health for `reclake tables` and `reclake history`: file counts, sizes and rows from
the Delta log, last maintenance runs from the maintenance log, live snapshots from the
registry, freshness from reclake's ingest, label and sample logs, quarantine counts by
reason. JVM-free (delta-rs), so the CLI (and the Airflow UI view) answers in under a second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reclake.config import Settings
from reclake.hourlog import newest_hour
from reclake.ingest.log import ingested_hours
from reclake.maintenance import deltalog
from reclake.maintenance import log as mlog
from reclake.maintenance.policy import policy_for
from reclake.snapshots import list_snapshots
from reclake.snapshots.deltars import open_table
from reclake.snapshots.manifest import read_manifest
from reclake.tables import TABLES
from reclake.tables import table as table_spec
from reclake.timeutil import iso

# Operation metrics worth a glance in `reclake history`, in display order.
SUMMARY_METRICS = (
    "numOutputRows",
    "numFiles",
    "numAddedFiles",
    "numRemovedFiles",
    "numAddedBytes",
    "numRemovedBytes",
    "numTargetRowsInserted",
    "numTargetRowsDeleted",
)


@dataclass(frozen=True)
class TableHealth:
    """One table's layout and maintenance state."""

    table: str
    exists: bool
    files: int = 0
    rows: int = 0
    total_bytes: int = 0
    avg_file_bytes: int = 0
    small_file_ratio: float = 0.0  # files below 25% of the target size / all files
    latest_version: int | None = None
    last_optimize: str | None = None
    last_vacuum: str | None = None
    live_snapshots: int = 0


def small_file_ratio(sizes: list[int], small_below: int) -> float:
    """Fraction of files smaller than `small_below` bytes (0 for no files)."""
    return round(sum(1 for s in sizes if s < small_below) / len(sizes), 3) if sizes else 0.0


def table_health(settings: Settings, table: str) -> TableHealth:
    """Health of one catalog table (exists=False when it was never written)."""
    uri = table_spec(table).uri(settings)
    if not deltalog.is_table(uri):
        return TableHealth(table, exists=False)
    version = deltalog.latest_version(uri)
    manifest = read_manifest(uri, version)
    sizes = [f.size for f in manifest.files]
    last_opt = mlog.last(settings, table, mlog.OPTIMIZE)
    last_vac = mlog.last(settings, table, mlog.VACUUM)
    return TableHealth(
        table=table,
        exists=True,
        files=len(sizes),
        rows=manifest.row_count,
        total_bytes=sum(sizes),
        avg_file_bytes=sum(sizes) // len(sizes) if sizes else 0,
        small_file_ratio=small_file_ratio(sizes, policy_for(settings, table).small_file_bytes),
        latest_version=version,
        last_optimize=last_opt.finished_at if last_opt else None,
        last_vacuum=last_vac.finished_at if last_vac else None,
        live_snapshots=len(list_snapshots(settings, table)),
    )


def all_health(settings: Settings) -> list[TableHealth]:
    """Health of every catalog table."""
    return [table_health(settings, name) for name in TABLES]


def freshness(settings: Settings) -> dict[str, str | None]:
    """Newest hour ingested (arrival), labeled and sampled, from reclake's own logs."""
    from reclake.features.labels import LABEL_LOG_DIR
    from reclake.features.samples import SAMPLE_LOG_DIR

    ingested = ingested_hours(settings)
    newest = {
        "ingested": ingested[-1] if ingested else None,
        "labeled": newest_hour(settings, LABEL_LOG_DIR),
        "sampled": newest_hour(settings, SAMPLE_LOG_DIR),
    }
    return {k: iso(v) if v else None for k, v in newest.items()}


def quarantine_counts(settings: Settings) -> dict[str, dict[str, int]]:
    """Rows per reason in each quarantine table's current version (most frequent first)."""
    import pyarrow.compute as pc

    counts: dict[str, dict[str, int]] = {}
    for name, spec in TABLES.items():
        uri = spec.uri(settings)
        if not spec.path.startswith("quarantine/") or not deltalog.is_table(uri):
            continue
        reasons = open_table(uri).to_pyarrow_dataset().to_table(columns=["reason"])
        pairs = pc.value_counts(reasons.column("reason")).to_pylist()
        ordered = sorted(pairs, key=lambda p: (-p["counts"], p["values"]))
        counts[name] = {p["values"]: p["counts"] for p in ordered}
    return counts


def history(settings: Settings, table: str, limit: int = 20) -> list[dict[str, Any]]:
    """The table's Delta history, newest first: version, time, operation, metrics summary."""
    uri = table_spec(table).uri(settings)
    if not deltalog.is_table(uri):
        raise FileNotFoundError(f"table {table!r} does not exist at {uri}")
    rows = []
    for commit in deltalog.recent_commits(uri, limit):
        metrics = commit.info.get("operationMetrics") or {}
        params = commit.info.get("operationParameters") or {}
        summary = {k: metrics[k] for k in SUMMARY_METRICS if k in metrics}
        if "zOrderBy" in params:
            summary["zOrderBy"] = params["zOrderBy"]
        rows.append(
            {
                "version": commit.version,
                "timestamp": _iso_ms(commit.timestamp_ms),
                "operation": commit.operation,
                "metrics": summary,
            }
        )
    return rows


def _iso_ms(ms: Any) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
