"""The pages of the reclake view in the Airflow UI, as pure functions from what the library
returns (health rows, snapshot records, validation results, profiles, ingest logs) to HTML.
No I/O: reclake.ui.views gathers the data, the Airflow plugin routes requests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from reclake.ui import svg
from reclake.ui.html import esc, form, link, page, table, verdict

HEALTH_COLUMNS = (
    "table",
    "latest_version",
    "rows",
    "files",
    "total_bytes",
    "small_file_ratio",
    "last_optimize",
    "last_vacuum",
    "live_snapshots",
)
# Per arrival hour, plotted and listed on the ingest page (HourReport fields).
INGEST_SERIES = ("input_lines", "bronze_rows", "quarantined_rows", "duplicates_dropped")


def tables_page(
    health: Sequence[Mapping[str, Any]],
    freshness: Mapping[str, str | None],
    quarantine: Mapping[str, Mapping[str, int]],
    *,
    base: str,
) -> str:
    """Every table's version, rows, files and maintenance; freshness; quarantine by reason."""
    written = [dict(h) for h in health if h["exists"]]
    missing = [h["table"] for h in health if not h["exists"]]
    for h in written:
        h["small_file_ratio"] = f"{h['small_file_ratio']:.1%}"
    body = [table(written, HEALTH_COLUMNS, cls="health")]
    if missing:
        body.append(f"<p class='muted'>Not written yet: {esc(', '.join(missing))}</p>")
    body.append("<h2>Freshness: newest hour in reclake's logs</h2>")
    body.append(
        table(
            [{"log": k, "newest hour": v} for k, v in freshness.items()],
            ("log", "newest hour"),
            cls="freshness",
        )
    )
    body.append("<h2>Quarantined rows by reason</h2>")
    if not quarantine:
        body.append("<p class='muted'>No quarantine table yet.</p>")
    for name, reasons in quarantine.items():
        rows = [{"reason": r, "rows": n} for r, n in reasons.items()]
        body.append(f"<h3>{esc(name)}</h3>")
        body.append(table(rows, ("reason", "rows"), cls="quarantine") if rows else "<p>none</p>")
    return page("Tables", "".join(body), base=base, active="tables")


def snapshot_row(
    snap: Mapping[str, Any],
    *,
    latest: bool,
    validation: Mapping[str, Any] | None,
    run: Mapping[str, str] | None,
    base: str,
) -> dict[str, Any]:
    """One line of the snapshot list: links, figures, flags and outcomes, as table cells."""
    sid = snap["id"]
    audit = snap.get("audit")
    flags = [f for f, on in (("latest", latest), ("pinned", snap["pinned"])) if on]
    if snap["status"] != "live":
        flags.append(snap["status"])
    return {
        "snapshot": link(f"{base}/snapshots/{quote(sid)}", sid),
        "table": snap["table"],
        "version": snap["version"],
        "rows": snap["row_count"],
        "files": len(snap["files"]),
        "interval": interval(snap["interval_start"], snap["interval_end"]),
        "created_at": snap["created_at"],
        "flags": " ".join(f"<span class='badge'>{esc(f)}</span>" for f in flags),
        "validation": verdict(validation["success"] if validation else None),
        "audit": verdict(audit["success"] if audit else None),
        "published by": run_link(run),
    }


def interval(start: str | None, end: str | None) -> str:
    """A data interval as [start, end), '-' for an unknown bound."""
    return f"[{start or '-'}, {end or '-'})"


def run_link(run: Mapping[str, str] | None) -> str:
    """Link to the Airflow DAG run that published a snapshot, or '-' when none is recorded."""
    if not run:
        return "<span class='muted'>not recorded</span>"
    href = f"/dags/{quote(run['dag_id'])}/runs/{quote(run['run_id'])}"
    return link(href, f"{run['dag_id']} / {run['run_id']}", top=True)


def snapshots_page(
    rows: Sequence[Mapping[str, Any]],
    latest: Mapping[str, str | None],
    ids: Sequence[str],
    *,
    base: str,
) -> str:
    """The snapshot list (rows from snapshot_row), where latest points, a diff picker and the
    rollback entry per table."""
    columns = (
        "snapshot",
        "table",
        "version",
        "rows",
        "files",
        "interval",
        "created_at",
        "flags",
        "validation",
        "audit",
        "published by",
    )
    raw = ("snapshot", "flags", "validation", "audit", "published by")
    body = [table(rows, columns, cls="snapshots", raw=raw) if rows else "<p>No snapshots.</p>"]
    body.append("<h2>latest</h2><ul class='latest'>")
    for name, sid in latest.items():
        target = link(f"{base}/snapshots/{quote(sid)}", sid) if sid else "-"
        rollback = link(f"{base}/snapshots/{quote(name)}/rollback", "roll back...")
        body.append(f"<li>{esc(name)}@latest = {target} ({rollback})</li>")
    body.append("</ul>")
    if len(ids) >= 2:
        options = "".join(f"<option>{esc(i)}</option>" for i in ids)
        newest = f"<option selected>{esc(ids[-1])}</option>"
        body.append(
            f"<h2>Compare two snapshots</h2><form method='get' action='{base}/snapshots/diff'>"
            f"<select name='a'>{options}</select> &rarr; "
            f"<select name='b'>{options.replace(f'<option>{esc(ids[-1])}</option>', newest)}"
            "</select> <button type='submit'>diff</button></form>"
        )
    return page("Snapshots", "".join(body), base=base, active="snapshots")


def snapshot_page(
    snap: Mapping[str, Any],
    *,
    latest: bool,
    validation: Mapping[str, Any] | None,
    data_docs: str | None,
    audits: Sequence[Mapping[str, Any]],
    run: Mapping[str, str] | None,
    previous: str | None,
    base: str,
) -> str:
    """One snapshot: figures, interval, validation (with its Data Docs), audits, the run that
    published it, and its schema."""
    sid = snap["id"]
    facts = {
        "table": snap["table"],
        "version": snap["version"],
        "rows": snap["row_count"],
        "files": len(snap["files"]),
        "bytes": sum(f["size"] for f in snap["files"]),
        "interval": interval(snap["interval_start"], snap["interval_end"]),
        "latest": latest,
        "status": snap["status"],
        "pinned": snap["pinned"],
        "created_at": snap["created_at"],
        "expires_at": snap["expires_at"],
        "partition_by": ", ".join(snap["partition_by"]) or None,
    }
    rows = [{"field": k, "value": v} for k, v in facts.items()]
    body = [table(rows, ("field", "value"), cls="facts")]
    body.append("<h2>Validation</h2>")
    body.append(_validation(snap["validation_id"], validation, data_docs))
    body.append("<h2>Audit</h2>")
    audit_rows = [
        {
            "audit": a["id"],
            "outcome": verdict(a["success"]),
            "rows checked": a["rows_checked"],
            "mismatched rows": a["mismatched_rows"],
            "created_at": a.get("created_at"),
        }
        for a in audits
    ] or ([{**snap["audit"], "audit": snap["audit"]["id"]}] if snap.get("audit") else [])
    body.append(
        table(
            audit_rows,
            ("audit", "outcome", "rows checked", "mismatched rows", "created_at"),
            cls="audits",
            raw=("outcome",),
        )
        if audit_rows
        else "<p class='muted'>No audit recorded.</p>"
    )
    body.append(f"<h2>Published by</h2><p>{run_link(run)}</p>")
    body.append("<h2>Drift</h2><p>")
    body.append(link(f"{base}/features?snapshot={quote(sid)}", "feature distributions"))
    if previous:
        diff = f"{base}/snapshots/diff?a={quote(previous)}&b={quote(sid)}"
        body.append(" | " + link(diff, f"diff against the previous snapshot {previous}"))
    body.append("</p><h2>Schema</h2>")
    fields = json.loads(snap["schema"])["fields"]
    schema = [
        {
            "column": f["name"],
            "type": f["type"] if isinstance(f["type"], str) else json.dumps(f["type"]),
            "nullable": f["nullable"],
        }
        for f in fields
    ]
    body.append(table(schema, ("column", "type", "nullable"), cls="schema"))
    return page(f"Snapshot {sid}", "".join(body), base=base, active="snapshots")


def _validation(validation_id: str, result: Mapping[str, Any] | None, data_docs: str | None) -> str:
    """The validation result that allowed a publish: outcome, counts, failures, Data Docs."""
    if result is None:
        return f"<p class='bad'>validation result {esc(validation_id)} not found</p>"
    docs = link(data_docs, "Data Docs") if data_docs else "<span class='muted'>no Data Docs</span>"
    stats = result.get("statistics") or {}
    facts = [
        {"field": "result", "value": validation_id},
        {"field": "outcome", "value": verdict(result["success"])},
        {"field": "rows validated", "value": esc(stats.get("row_count"))},
        {
            "field": "interval",
            "value": esc(interval(result["interval_start"], result["interval_end"])),
        },
        {"field": "checks", "value": esc(len(result.get("checks") or []))},
        {"field": "failures", "value": esc(len(result.get("failures") or []))},
        {"field": "report", "value": docs},
    ]
    out = table(facts, ("field", "value"), cls="validation", raw=("value",))
    failures = result.get("failures") or []
    if failures:
        out += table(failures, ("expectation", "column", "message"), cls="failures")
    return out


def diff_page(d: Mapping[str, Any], *, base: str) -> str:
    """What changed from snapshot a to b: rows, files, schema, numeric column statistics."""
    a, b, rc, files = d["a"], d["b"], d["row_count"], d["files"]
    summary = [
        {"": "snapshot", "a": a["id"], "b": b["id"]},
        {"": "version", "a": a["version"], "b": b["version"]},
        {"": "rows", "a": rc["a"], "b": rc["b"]},
    ]
    body = [table(summary, ("", "a", "b"), cls="diff-summary")]
    body.append(
        f"<p>rows {rc['delta']:+,d}; files +{len(files['added'])} ({esc(files['bytes_added'])} "
        f"bytes), -{len(files['removed'])} ({esc(files['bytes_removed'])} bytes), "
        f"{files['unchanged']} unchanged</p>"
    )
    from reclake.snapshots.diff import schema_change_rows

    changes = schema_change_rows(d["schema"])
    body.append("<h2>Schema</h2>")
    body.append(table(changes, ("change", "column", "type")) if changes else "<p>unchanged</p>")
    stats = [
        {
            "column": col,
            **{f"{stat} a": (s["a"] or {}).get(stat) for stat in ("mean", "null_count")},
            **{f"{stat} b": (s["b"] or {}).get(stat) for stat in ("mean", "null_count")},
            "min a..b": f"{esc((s['a'] or {}).get('min'))} .. {esc((s['b'] or {}).get('min'))}",
            "max a..b": f"{esc((s['a'] or {}).get('max'))} .. {esc((s['b'] or {}).get('max'))}",
        }
        for col, s in d["columns"].items()
    ]
    columns = ("column", "mean a", "mean b", "null_count a", "null_count b", "min a..b", "max a..b")
    body.append("<h2>Numeric columns</h2>" + table(stats, columns, cls="diff-columns"))
    title = f"Diff {a['id']} -> {b['id']}"
    return page(title, "".join(body), base=base, active="snapshots")


def features_page(profile: Mapping[str, Any], snapshot_ids: Sequence[str], *, base: str) -> str:
    """Every feature's distribution and null rate beside the baseline's, with the PSI."""
    snap, baseline = profile["snapshot"], profile["baseline"]
    options = "".join(
        f"<option{' selected' if i == snap['id'] else ''}>{esc(i)}</option>" for i in snapshot_ids
    )
    body = [
        f"<form method='get' action='{base}/features'>snapshot <select name='snapshot'>"
        f"{options}</select> <button type='submit'>show</button></form>",
        f"<p>{esc(snap['id'])} ({esc(snap['rows'])} rows) against "
        + (f"{esc(baseline['id'])} ({esc(baseline['rows'])} rows)" if baseline else "no baseline")
        + "</p>",
        f"<p class='legend'><span style='background:{svg.CURRENT}'></span>this snapshot"
        f"<span style='background:{svg.BASELINE}'></span>baseline (previous snapshot)</p>",
    ]
    rows = [
        {
            "feature": f.column,
            "distribution": svg.histogram_pair(
                f.edges, f.counts, f.baseline_counts, label=f.column
            ),
            "null rate": svg.rate_pair(f.null_rate, f.baseline_null_rate, label=f.column),
            "mean": f.stats["mean"],
            "baseline mean": (f.baseline_stats or {}).get("mean"),
            "PSI": f.psi,
        }
        for f in profile["features"]
    ]
    columns = ("feature", "distribution", "null rate", "mean", "baseline mean", "PSI")
    body.append(table(rows, columns, cls="features", raw=("distribution", "null rate")))
    return page("Features", "".join(body), base=base, active="features")


def ingest_page(logs: Sequence[Mapping[str, Any]], days: float, *, base: str) -> str:
    """Input lines, bronze rows, quarantined rows and duplicates per arrival hour, as a plot
    and as a table (newest first)."""
    ticks = [h["arrival_hour"] for h in logs]
    series = {name: [h[name] for h in logs] for name in INGEST_SERIES}
    body = [
        f"<form method='get' action='{base}/ingest'>days <input name='days' value='{esc(days)}' "
        "size='4'> <button type='submit'>show</button></form>",
        f"<p>{len(logs)} arrival hours with an ingest log in the {esc(days)} days up to the "
        "newest one.</p>",
        svg.series_plot(ticks, series, label="ingest per arrival hour"),
    ]
    totals = {"arrival_hour": "total", **{k: sum(series[k]) for k in INGEST_SERIES}}
    rows = [*reversed(logs), totals] if logs else []
    body.append(table(rows, ("arrival_hour", *INGEST_SERIES, "source"), cls="ingest"))
    return page("Ingest health", "".join(body), base=base, active="ingest")


def rollback_page(
    table_name: str, current: Mapping[str, Any], target: Mapping[str, Any], *, base: str
) -> str:
    """The confirmation step of a rollback: what latest points to now and where it will."""
    rows = [
        {
            "": "now",
            "snapshot": current["id"],
            "version": current["version"],
            "rows": current["row_count"],
        },
        {
            "": "after",
            "snapshot": target["id"],
            "version": target["version"],
            "rows": target["row_count"],
        },
    ]
    fields = {"to": target["id"], "expected_latest": current["id"], "confirm": "yes"}
    body = (
        f"<p>Move <b>{esc(table_name)}@latest</b> back. No data changes; readers that resolve "
        "latest from now on get the earlier snapshot.</p>"
        + table(rows, ("", "snapshot", "version", "rows"), cls="rollback")
        + form(f"{base}/snapshots/{quote(table_name)}/rollback", fields, "Confirm rollback")
        + "<p>"
        + link(f"{base}/snapshots", "cancel")
        + "</p>"
    )
    return page(f"Roll back {table_name}@latest?", body, base=base, active="snapshots")


def rollback_done_page(table_name: str, snap: Mapping[str, Any], *, base: str) -> str:
    """After a rollback: where latest points now."""
    target = link(f"{base}/snapshots/{quote(snap['id'])}", snap["id"])
    body = (
        f"<p class='done'>{esc(table_name)}@latest now points to {target} (v{snap['version']}).</p>"
    )
    return page("Rolled back", body, base=base, active="snapshots")


def message_page(title: str, message: str, *, base: str, active: str = "") -> str:
    """A page that only says something (not found, nothing to roll back to, ...)."""
    return page(title, f"<p class='message'>{esc(message)}</p>", base=base, active=active)
