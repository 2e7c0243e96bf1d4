"""What each page of the reclake view shows, read through the same library functions the CLI
uses (health, snapshot registry, diff, profile, validation and audit results, ingest log),
then rendered by reclake.ui.pages. JVM-free: delta-rs, pyarrow and JSON logs only, so the
Airflow API server can serve it without starting Spark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reclake.config import Settings
from reclake.lakefs import local_path
from reclake.quality.gx_runner import DATA_DOCS_DIR
from reclake.ui import pages

SNAPSHOT_TABLE = "training_samples"

# snapshot id -> {"dag_id", "run_id"} of the Airflow run that published it (from Airflow).
Runs = Mapping[str, Mapping[str, str]]


def tables(settings: Settings, *, base: str) -> str:
    """The tables page."""
    from reclake.maintenance.health import all_health, freshness, quarantine_counts

    health = [asdict(h) for h in all_health(settings)]
    return pages.tables_page(health, freshness(settings), quarantine_counts(settings), base=base)


def snapshots(settings: Settings, *, base: str, runs: Runs) -> str:
    """The snapshot list with latest, validation and audit outcomes and publishing runs."""
    from reclake.snapshots import latest_id, list_snapshots

    snaps = list_snapshots(settings, include_expired=True)
    latest = {t: latest_id(settings, t) for t in sorted({s.table for s in snaps})}
    rows = [
        pages.snapshot_row(
            asdict(s),
            latest=latest[s.table] == s.id,
            validation=_validation(settings, s.table, s.validation_id),
            run=runs.get(s.id),
            base=base,
        )
        for s in snaps
    ]
    live = [s.id for s in snaps if s.live]
    return pages.snapshots_page(rows, latest, live, base=base)


def snapshot(settings: Settings, ref: str, *, base: str, runs: Runs) -> str:
    """One snapshot's page (expired ones too: their record stays for audit)."""
    from reclake.quality.audit_results import list_audits
    from reclake.snapshots import latest_id, resolve
    from reclake.snapshots.profile import previous_snapshot

    snap = resolve(settings, ref, allow_expired=True)
    previous = previous_snapshot(settings, snap) if snap.live else None
    validation = _validation(settings, snap.table, snap.validation_id)
    return pages.snapshot_page(
        asdict(snap),
        latest=latest_id(settings, snap.table) == snap.id,
        validation=validation,
        data_docs=data_docs_href(settings, (validation or {}).get("data_docs"), base),
        audits=[asdict(a) for a in list_audits(settings, snap.table, snap.version)],
        run=runs.get(snap.id),
        previous=previous.id if previous else None,
        base=base,
    )


def diff(settings: Settings, a: str, b: str, *, base: str) -> str:
    """The diff page of two snapshots (`reclake snapshots diff`)."""
    from reclake.snapshots import diff as snapshot_diff

    return pages.diff_page(snapshot_diff(settings, a, b), base=base)


def features(settings: Settings, ref: str | None, *, base: str) -> str:
    """Feature distributions of a snapshot (default: training_samples@latest) beside the
    previous snapshot's (`reclake snapshots drift`)."""
    from reclake.snapshots import list_snapshots
    from reclake.snapshots.profile import profile

    chosen = ref or f"{SNAPSHOT_TABLE}@latest"
    ids = [s.id for s in list_snapshots(settings)]
    return pages.features_page(profile(settings, chosen), ids, base=base)


def ingest(settings: Settings, days: float, *, base: str) -> str:
    """Per arrival hour counts of the last `days` days of ingest logs (`reclake ingest log`)."""
    from reclake.ingest import load_ingest_logs

    logs = [
        {**asdict(h), "duplicates_dropped": h.duplicates_dropped}
        for h in load_ingest_logs(settings, days)
    ]
    return pages.ingest_page(logs, days, base=base)


def rollback_confirm(settings: Settings, table: str, to: str | None, *, base: str) -> str:
    """The confirmation page: latest now, and the snapshot a rollback would point it to."""
    from reclake.snapshots import resolve
    from reclake.snapshots.registry import rollback_target

    current = resolve(settings, f"{table}@latest")
    target = rollback_target(settings, table, to)
    return pages.rollback_page(table, asdict(current), asdict(target), base=base)


def rollback(settings: Settings, table: str, to: str, expected_latest: str, *, base: str) -> str:
    """Move latest to `to`, if it still points where the confirmed page showed."""
    from reclake.snapshots import latest_id
    from reclake.snapshots import rollback as move_latest

    now = latest_id(settings, table)
    if now != expected_latest:
        raise StaleConfirmation(
            f"{table}@latest moved to {now} after the confirmation was shown; confirm again"
        )
    return pages.rollback_done_page(table, asdict(move_latest(settings, table, to)), base=base)


class StaleConfirmation(RuntimeError):
    """latest moved between the confirmation page and the confirmed POST."""


def data_docs_root(settings: Settings) -> Path | None:
    """The local folder of the lake's Data Docs site (None on a lake that is not local)."""
    uri = settings.table_uri(DATA_DOCS_DIR)
    return Path(local_path(uri)) if uri.startswith("file://") else None


def data_docs_href(settings: Settings, path: str | None, base: str) -> str | None:
    """The view's URL of a Data Docs file (served under <base>/data-docs/), if it is one."""
    root = data_docs_root(settings)
    if not path or root is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return f"{base}/data-docs/{relative.as_posix()}"


def _validation(settings: Settings, table: str, result_id: str) -> dict[str, Any] | None:
    from reclake.quality.results import load_result

    try:
        return asdict(load_result(settings, table, result_id))
    except KeyError:
        return None
