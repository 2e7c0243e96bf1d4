"""Persisted validation results: the record a publish checks before it makes a snapshot.

The Data Docs path a result names is stored relative to the lake and read back as a local
path in the lake the reader is configured with, so results stay valid when the lake moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from reclake import lakefs, lakepath
from reclake.config import Settings

RESULTS_DIR = "_reclake/validations"


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one table version (optionally for one data interval)."""

    id: str
    table: str
    version: int
    success: bool
    created_at: str
    interval_start: str | None = None
    interval_end: str | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    # One entry per failed expectation: {"expectation": ..., "column": ..., "observed": ...}
    failures: list[dict[str, Any]] = field(default_factory=list)
    data_docs: str | None = None
    # Every reclake check (freshness, trend, drift, label rates), passed, failed or skipped.
    checks: list[dict[str, Any]] = field(default_factory=list)


def result_uri(settings: Settings, table: str, result_id: str) -> str:
    """Where a validation result JSON document lives in the lake."""
    return settings.table_uri(f"{RESULTS_DIR}/{table}/{result_id}.json")


def save_result(settings: Settings, result: ValidationResult) -> str:
    """Persist a result; returns its URI."""
    uri = result_uri(settings, result.table, result.id)
    lakefs.write_json(uri, {**asdict(result), "data_docs": stored_docs(settings, result.data_docs)})
    return uri


def load_result(settings: Settings, table: str, result_id: str) -> ValidationResult:
    """Load a persisted result; fails clearly when it is unknown."""
    uri = result_uri(settings, table, result_id)
    if not lakefs.exists(uri):
        raise KeyError(f"no validation result {result_id!r} for table {table!r} ({uri})")
    return _loaded(settings, uri)


def list_results(settings: Settings, table: str) -> list[ValidationResult]:
    """All results of a table, oldest first."""
    folder = settings.table_uri(f"{RESULTS_DIR}/{table}")
    results = [_loaded(settings, u) for u in lakefs.list_files(folder, ".json")]
    return sorted(results, key=lambda r: r.created_at)


def stored_docs(settings: Settings, path: str | None) -> str | None:
    """A Data Docs path as result documents store it: relative to the lake root."""
    return (
        None if path is None else lakepath.relocate(path, settings.lake_root, lakepath.RECLAKE_DIR)
    )


def local_docs(settings: Settings, stored: str | None) -> str | None:
    """A stored Data Docs path (relative, or absolute from before the lake moved) as a local
    path in this lake; None when it cannot be placed in it."""
    if stored is None:
        return None
    try:
        relative = lakepath.relocate(stored, settings.lake_root, lakepath.RECLAKE_DIR)
    except lakepath.OutsideLake:
        return None  # only a link: the result itself must stay readable
    return lakefs.local_path(lakepath.join(settings.lake_root, relative))


def _loaded(settings: Settings, uri: str) -> ValidationResult:
    doc = lakefs.read_json(uri)
    return ValidationResult(**{**doc, "data_docs": local_docs(settings, doc.get("data_docs"))})
