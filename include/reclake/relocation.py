"""Moving a lake: restating the paths that reclake stored absolute before it stored them
relative (docs/snapshots.md, "Moving a lake").

Nothing needs this to read a moved lake: old absolute paths are placed in the configured lake
when they are read, and the registry restates its old records with its next change. Running
it once after a move (`reclake migrate-paths`) makes the stored documents themselves
independent of where the lake was.
"""

from __future__ import annotations

from reclake import lakefs, lakepath
from reclake.config import Settings
from reclake.quality.audit_results import AUDITS_DIR
from reclake.quality.results import RESULTS_DIR, stored_docs
from reclake.snapshots import registry


def migrate_paths(settings: Settings, *, dry_run: bool = False) -> dict[str, list[str]]:
    """Restate every stored absolute path relative to the lake: snapshot records (one registry
    commit) and the Data Docs links of validation and audit results; returns what changed (or,
    in a dry run, would change)."""
    return {
        "snapshots": registry.migrate(settings, dry_run=dry_run),
        "documents": _migrate_documents(settings, dry_run),
    }


def _migrate_documents(settings: Settings, dry_run: bool) -> list[str]:
    """Result documents (<dir>/<table>/<id>.json) whose data_docs is still absolute."""
    changed = []
    for folder in (RESULTS_DIR, AUDITS_DIR):
        root = settings.table_uri(folder)
        for table in lakefs.list_dirs(root):
            for uri in lakefs.list_files(f"{root}/{table}", ".json"):
                doc = lakefs.read_json(uri)
                value = doc.get("data_docs")
                if value is None or not lakepath.is_absolute(value):
                    continue
                try:
                    doc["data_docs"] = stored_docs(settings, value)
                except lakepath.OutsideLake:
                    continue  # not in this lake: reads show no link, the record stays as is
                changed.append(uri)
                if not dry_run:
                    lakefs.write_json(uri, doc)
    return changed
