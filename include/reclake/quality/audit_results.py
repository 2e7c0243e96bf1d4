"""Persisted point-in-time audit results (beside the validation results), their readable
report, and the Data Docs page of each audit. No Spark here: the snapshot registry reads
these records when it publishes."""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from reclake import lakefs
from reclake.config import Settings
from reclake.quality.results import local_docs, stored_docs

AUDITS_DIR = "_reclake/audits"
DATA_DOCS_AUDITS = "_reclake/data_docs/audits"
# Tables whose rows are recomputed from bronze before they may be published.
AUDITED_TABLES = ("training_samples",)
DEFAULT_SAMPLE_ROWS = 1000
DEFAULT_SEED = 0
# Mismatches kept in the record: enough to debug, bounded for a badly broken build.
MAX_REPORTED = 50


@dataclass(frozen=True)
class AuditResult:
    """Outcome of recomputing a seeded, stratified sample of one table version from bronze."""

    id: str
    table: str
    version: int
    success: bool
    created_at: str
    sample_size: int  # rows asked for
    seed: int
    rows_checked: int  # rows actually drawn (fewer when the version holds fewer)
    mismatched_rows: int
    interval_start: str | None = None
    interval_end: str | None = None
    validation_id: str | None = None
    snapshot_id: str | None = None  # set for an after-the-fact audit of a snapshot
    # stratum -> {"population": rows in the version, "sampled": rows drawn from it}
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    # feature -> number of sampled rows where it differs
    mismatch_counts: dict[str, int] = field(default_factory=dict)
    # The first MAX_REPORTED: {"event_id", "user_id", "item_id", "event_hour", "feature",
    # "expected", "got"}
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    # (users version, items version) pairs the dimension values were checked against
    dims_versions: list[list[int]] = field(default_factory=list)
    bronze_dates: int = 0  # event_date partitions of bronze read
    seconds: float = 0.0
    data_docs: str | None = None

    def summary(self) -> dict[str, Any]:
        """What the snapshot registry records about the audit that allowed a publish."""
        keys = ("id", "success", "sample_size", "seed", "rows_checked", "mismatched_rows")
        return {k: getattr(self, k) for k in keys}


def audit_id(table: str, version: int, at: datetime) -> str:
    """Unique, sortable id: <table>-v<version>-audit-<UTC stamp>-<4 hex>."""
    return f"{table}-v{version}-audit-{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def audit_uri(settings: Settings, table: str, result_id: str) -> str:
    """Where an audit result JSON document lives in the lake."""
    return settings.table_uri(f"{AUDITS_DIR}/{table}/{result_id}.json")


def save_audit(settings: Settings, result: AuditResult) -> str:
    """Persist an audit result; returns its URI."""
    uri = audit_uri(settings, result.table, result.id)
    # The Data Docs page is stored relative to the lake, as validation results store theirs.
    lakefs.write_json(uri, {**asdict(result), "data_docs": stored_docs(settings, result.data_docs)})
    return uri


def load_audit(settings: Settings, table: str, result_id: str) -> AuditResult:
    """Load a persisted audit result; KeyError when it is unknown."""
    uri = audit_uri(settings, table, result_id)
    if not lakefs.exists(uri):
        raise KeyError(f"no audit result {result_id!r} for table {table!r} ({uri})")
    return _loaded(settings, uri)


def list_audits(settings: Settings, table: str, version: int | None = None) -> list[AuditResult]:
    """Audit results of a table (of one version when given), oldest first."""
    folder = settings.table_uri(f"{AUDITS_DIR}/{table}")
    found = [_loaded(settings, u) for u in lakefs.list_files(folder, ".json")]
    if version is not None:
        found = [a for a in found if int(a.version) == int(version)]
    return sorted(found, key=lambda a: a.created_at)


def _loaded(settings: Settings, uri: str) -> AuditResult:
    doc = lakefs.read_json(uri)
    return AuditResult(**{**doc, "data_docs": local_docs(settings, doc.get("data_docs"))})


def report_lines(result: AuditResult) -> list[str]:
    """Human report: verdict, strata, mismatches per feature, then the first mismatched rows."""
    verdict = "PASSED" if result.success else "FAILED"
    target = f" (snapshot {result.snapshot_id})" if result.snapshot_id else ""
    lines = [
        f"audit {result.table} v{result.version}{target}: {verdict}: {result.rows_checked} rows "
        f"recomputed from bronze (asked {result.sample_size}, seed {result.seed}), "
        f"{result.mismatched_rows} mismatched, {result.seconds:.1f} s",
        "  strata: "
        + ", ".join(f"{k} {v['sampled']}/{v['population']}" for k, v in result.strata.items()),
    ]
    for feature, count in sorted(result.mismatch_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  MISMATCH {feature}: {count} of {result.rows_checked} rows")
    shown = result.mismatches
    for m in shown:
        lines.append(
            f"    event_id={m['event_id']} user_id={m['user_id']} item_id={m['item_id']} "
            f"event_hour={m['event_hour']} {m['feature']}: expected {_show(m['expected'])}, "
            f"got {_show(m['got'])}"
        )
    total = sum(result.mismatch_counts.values())
    if total > len(shown):
        lines.append(f"    ... {total - len(shown)} more (see the audit record)")
    lines.append(f"audit id: {result.id}")
    lines.append(f"data docs: {result.data_docs or '-'}")
    return lines


def data_docs_page(settings: Settings, result_id: str) -> str | None:
    """Path of an audit's page in the Data Docs site (None on a lake that is not a local
    folder: GX's own Data Docs need one too)."""
    if not settings.lake_root.startswith("file://"):
        return None
    return lakefs.local_path(settings.table_uri(f"{DATA_DOCS_AUDITS}/{result_id}.html"))


def write_data_docs(settings: Settings, result: AuditResult) -> None:
    """Write the audit's page and the index of every saved audit into the Data Docs site."""
    if data_docs_page(settings, result.id) is None:
        return
    folder = settings.table_uri(DATA_DOCS_AUDITS)
    _write_text(f"{folder}/{result.id}.html", _page(result))
    audits = [a for t in AUDITED_TABLES for a in list_audits(settings, t)]
    audits.sort(key=lambda a: a.created_at, reverse=True)
    _write_text(f"{folder}/index.html", _index(audits))


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def _write_text(uri: str, text: str) -> None:
    lakefs.write_bytes(uri, text.encode("utf-8"))


def _page(result: AuditResult) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_show(m[k]) if k in ('expected', 'got') else str(m[k]))}</td>"
            for k in ("event_id", "user_id", "item_id", "event_hour", "feature", "expected", "got")
        )
        + "</tr>"
        for m in result.mismatches
    )
    counts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
        for k, v in sorted(result.mismatch_counts.items())
    )
    report = html.escape("\n".join(report_lines(result)))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.id)}"
        "</title></head><body>"
        f"<p><a href='index.html'>all audits</a> | <a href='../index.html'>Data Docs</a></p>"
        f"<h1>Point-in-time audit {html.escape(result.id)}</h1><pre>{report}</pre>"
        f"<h2>Mismatches per feature</h2><table border='1'><tr><th>feature</th><th>rows</th>"
        f"</tr>{counts}</table>"
        "<h2>Mismatched rows</h2><table border='1'><tr><th>event_id</th><th>user_id</th>"
        "<th>item_id</th><th>event_hour</th><th>feature</th><th>expected</th><th>got</th></tr>"
        f"{rows}</table></body></html>"
    )


def _index(results: list[AuditResult]) -> str:
    rows = "".join(
        f"<tr><td><a href='{html.escape(a.id)}.html'>{html.escape(a.id)}</a></td>"
        f"<td>{'passed' if a.success else 'FAILED'}</td><td>{a.rows_checked}</td>"
        f"<td>{a.mismatched_rows}</td><td>{html.escape(a.created_at)}</td></tr>"
        for a in results
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>reclake audits</title></head>"
        "<body><p><a href='../index.html'>Data Docs</a></p><h1>Point-in-time audits</h1>"
        "<table border='1'><tr><th>audit</th><th>outcome</th><th>rows</th><th>mismatched</th>"
        f"<th>created</th></tr>{rows}</table></body></html>"
    )
