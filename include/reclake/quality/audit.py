"""The point-in-time audit of write-audit-publish: draw a seeded, stratified sample of a
training_samples version, recompute every feature, label, key and dimension value of those
rows straight from bronze/events and the dimensions (quality.audit_recompute), and require
exact equality. The result is saved beside the validation results; publish refuses a
version whose audit did not pass (docs/quality.md)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from reclake.config import Settings
from reclake.features.definitions import DEFINITIONS, FeatureDefinitions
from reclake.maintenance import dims_lineage
from reclake.quality.audit_recompute import Probe, as_text, micros, read_version, recompute
from reclake.quality.audit_results import (
    AUDITED_TABLES,
    DEFAULT_SAMPLE_ROWS,
    DEFAULT_SEED,
    MAX_REPORTED,
    AuditResult,
    audit_id,
    data_docs_page,
    save_audit,
    write_data_docs,
)
from reclake.quality.audit_sample import draw
from reclake.tables import table
from reclake.timeutil import iso, parse_utc

if TYPE_CHECKING:
    import pyarrow.dataset as ds

# What identifies a mismatched row in the report.
ROW_KEYS = ("event_id", "user_id", "item_id", "event_hour")
MISSING_IMPRESSION = "impression"


def check_auditable(table_name: str, sample_size: int) -> None:
    """Usage errors: an unaudited table or an empty sample."""
    if table_name not in AUDITED_TABLES:
        raise ValueError(f"table {table_name!r} has no audit; audited: {', '.join(AUDITED_TABLES)}")
    if sample_size < 1:
        raise ValueError(f"--sample must be at least 1, got {sample_size}")


def audit_version(
    settings: Settings,
    table_name: str,
    version: int | None = None,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    sample_size: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
    validation_id: str | None = None,
    snapshot_id: str | None = None,
    definitions: FeatureDefinitions = DEFINITIONS,
) -> AuditResult:
    """Audit a table version (default latest), optionally only its rows in [start, end);
    the result is saved (and its Data Docs page written) before it is returned. No JVM:
    delta-rs lists the files, pyarrow and numpy do the rest."""
    from reclake.maintenance.deltalog import latest_version

    began = time.perf_counter()
    check_auditable(table_name, sample_size)
    if (start is None) != (end is None):
        raise ValueError("give both --start and --end, or neither")
    spec = table(table_name)
    if version is None:
        version = latest_version(spec.uri(settings))
    where = None
    if start is not None:
        start, end = parse_utc(start), parse_utc(end)
        where = interval_filter(spec.time_column, start, end)
    sample = draw(spec.uri(settings), version, where, sample_size, seed, definitions)
    got = sampled_rows(spec.uri(settings), version, sample.event_ids, sample.dates)
    probes = [Probe(i, r["_hour_us"], r["_time_us"]) for i, r in got.items()]
    dates = {r["sample_date"] for r in got.values()}
    dims = dims_lineage.versions_for(settings, spec.uri(settings), version, dates) if got else []
    dims_lineage.check_readable(settings, dims)
    expected, bronze_dates = recompute(settings, probes, dims, definitions) if got else ({}, 0)
    found = compare(got, expected, [name for name, _ in definitions.sample_columns()])
    now = datetime.now(UTC)
    rid = audit_id(table_name, version, now)
    result = AuditResult(
        id=rid,
        table=table_name,
        version=int(version),
        success=not found,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        sample_size=sample_size,
        seed=seed,
        rows_checked=len(got),
        mismatched_rows=len({m["event_id"] for m in found}),
        interval_start=iso(start) if start is not None else None,
        interval_end=iso(end) if end is not None else None,
        validation_id=validation_id,
        snapshot_id=snapshot_id,
        strata=sample.strata,
        mismatch_counts=dict(Counter(m["feature"] for m in found)),
        mismatches=found[:MAX_REPORTED],
        dims_versions=[list(pair) for pair in dims],
        bronze_dates=bronze_dates,
        seconds=round(time.perf_counter() - began, 3),
        data_docs=data_docs_page(settings, rid),
    )
    save_audit(settings, result)
    write_data_docs(settings, result)
    return result


def interval_filter(time_column: str, start: datetime, end: datetime) -> ds.Expression:
    """Rows of training_samples in [start, end): their sample_date partitions, then the time."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    days = (end - timedelta(microseconds=1)).date() - start.date()
    dates = [start.date() + timedelta(days=d) for d in range(days.days + 1)]
    when = pa.timestamp("us", tz="UTC")
    return (
        ds.field("sample_date").isin(pa.array(dates, pa.date32()))
        & (ds.field(time_column) >= pa.scalar(start, when))
        & (ds.field(time_column) < pa.scalar(end, when))
    )


def sampled_rows(
    uri: str, version: int, event_ids: tuple[str, ...], dates: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """The drawn rows of a table version as Python values, by event id, read JVM-free from
    their sample_date partitions (Spark's join took 6x as long: 19.1 s against 2.9 s for 4M
    rows)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not event_ids:
        return {}
    wanted = ds.field("sample_date").isin(pa.array([date.fromisoformat(d) for d in dates]))
    wanted &= ds.field("event_id").isin(pa.array(event_ids, pa.string()))
    found = read_version(uri, version, wanted)
    times = {c: micros(found[c]).to_pylist() for c in ("event_time", "event_hour")}
    rows = {}
    for i, row in enumerate(found.to_pylist()):
        time_us, hour_us = times["event_time"][i], times["event_hour"][i]
        # Times are compared as text (UTC, microseconds): exact, and readable in the report.
        row.update(
            _time_us=time_us,
            _hour_us=hour_us,
            event_time=as_text(time_us),
            event_hour=as_text(hour_us),
            sample_date=row["sample_date"].isoformat(),
        )
        rows[row["event_id"]] = row
    return rows


def compare(
    got: dict[str, dict[str, Any]],
    expected: dict[str, list[dict[str, Any]]],
    columns: list[str],
) -> list[dict[str, Any]]:
    """Mismatch records (row keys, feature, expected, got) of every sampled row, in event id
    order. A row is compared with each candidate recompute (one per dimension version that
    could have built it) and judged by the closest one; no candidate means the impression is
    not an on-time impression in bronze. Equality is exact, floats included (pure)."""
    out = []
    for event_id in sorted(got):
        row = got[event_id]
        keys = {k: row.get(k) for k in ROW_KEYS}
        options = expected.get(event_id)
        if not options:
            missing = {"feature": MISSING_IMPRESSION, "expected": "on time in bronze", "got": None}
            out.append({**keys, **missing})
            continue
        differing, want = min(
            (([c for c in columns if not _same(row.get(c), w.get(c))], w) for w in options),
            key=lambda found: len(found[0]),
        )
        out += [
            {**keys, "feature": c, "expected": want.get(c), "got": row.get(c)} for c in differing
        ]
    return out


def _same(got: Any, want: Any) -> bool:
    """Exact equality; a bool never equals a number (True == 1 in Python)."""
    if isinstance(got, bool) != isinstance(want, bool):
        return False
    return got == want
