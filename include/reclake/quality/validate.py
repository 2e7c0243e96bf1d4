"""The quality gate of one table version: GX suite + reclake checks -> a persisted
ValidationResult that publish() requires (success=True for exactly that table and version)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reclake import io
from reclake.config import Settings
from reclake.maintenance import deltalog
from reclake.quality import checks as chk
from reclake.quality.gx_runner import run_suite
from reclake.quality.report import expectation_failure
from reclake.quality.results import ValidationResult, list_results, load_result, save_result
from reclake.quality.stats import bin_fractions, rule_violations, table_statistics
from reclake.quality.suites import load_suite
from reclake.tables import table as table_spec
from reclake.timeutil import iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def validate_table(
    spark: SparkSession,
    settings: Settings,
    table: str,
    *,
    version: int | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    baseline_id: str | None = None,
) -> ValidationResult:
    """Validate a table version (default latest), optionally only rows in [start, end).

    The drift baseline is the validation result of the table's latest snapshot, or the
    result `baseline_id` names. The result is saved before it is returned.
    """
    from pyspark.sql import functions as F

    spec = table_spec(table)
    suite = load_suite(spec, settings.expectations_dir)
    if (start is None) != (end is None):
        raise ValueError("give both --start and --end, or neither")
    start_at = parse_utc(start) if start is not None else None
    end_at = parse_utc(end) if end is not None else None
    if start_at is not None and not spec.time_column:
        raise ValueError(f"table {table!r} has no time column: validate it without an interval")
    if start_at is not None and end_at <= start_at:
        raise ValueError(f"interval end {iso(end_at)} is not after its start {iso(start_at)}")

    uri = spec.uri(settings)
    if version is None and io.is_delta_table(spark, uri):
        version = deltalog.latest_version(uri)  # pinned, so the result names what was read
    df = io.read_table(spark, spec, settings, version)
    if start_at is not None:
        t = F.col(spec.time_column)
        df = df.where((t >= F.lit(start_at)) & (t < F.lit(end_at)))

    baseline, baseline_note = _baseline(settings, table, baseline_id)
    drift_conf = suite.checks.get("distribution_drift", {})
    df = df.persist()
    try:
        gx = run_suite(settings, suite, df)
        stats = table_statistics(
            df,
            time_column=spec.time_column,
            numeric_columns=suite.statistics_columns,
            label_columns=list(suite.labels),
        )
        violations = rule_violations(df, suite.column_rules)
        on_baseline_bins = {}
        if baseline is not None and drift_conf.get("enabled"):
            base_cols = baseline.statistics.get("columns", {})
            on_baseline_bins = bin_fractions(
                df,
                {
                    c: base_cols[c]["histogram"]["edges"]
                    for c in suite.drift_columns
                    if base_cols.get(c, {}).get("histogram")
                },
            )
    finally:
        df.unpersist()

    interval_hours = (end_at - start_at).total_seconds() / 3600 if start_at else None
    upstream = upstream_record(settings, table, start_at, end_at)
    results = run_checks(
        suite.checks,
        stats,
        suite.labels,
        start_at,
        end_at,
        interval_hours,
        history=list_results(settings, table),
        baseline=baseline,
        baseline_note=baseline_note,
        on_baseline_bins=on_baseline_bins,
        upstream=upstream,
    )
    results = chk.column_rules(suite.column_rules, violations, stats["row_count"]) + results
    failures = [expectation_failure(r) for r in gx.results if not r.get("success")]
    failures += [c.to_record() for c in results if c.failed]
    stats.update(
        interval_hours=interval_hours,
        expectations_evaluated=len(gx.results),
        expectations_failed=sum(1 for r in gx.results if not r.get("success")),
        suite_file=suite.meta.get("file"),
        baseline_id=baseline.id if baseline else None,
    )
    now = datetime.now(UTC)
    result = ValidationResult(
        id=result_id(table, version, now),
        table=table,
        version=version,
        success=gx.success and not any(c.failed for c in results),
        created_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        interval_start=iso(start_at) if start_at else None,
        interval_end=iso(end_at) if end_at else None,
        statistics=stats,
        failures=failures,
        data_docs=gx.data_docs,
        checks=[c.to_record() for c in results],
    )
    save_result(settings, result)
    return result


def run_checks(
    conf: dict[str, dict],
    stats: dict,
    labels: dict[str, dict],
    start: datetime | None,
    end: datetime | None,
    interval_hours: float | None,
    *,
    history: list[ValidationResult],
    baseline: ValidationResult | None,
    baseline_note: str,
    on_baseline_bins: dict[str, list[float] | None],
    upstream: tuple[str, int | None] | None = None,
) -> list[chk.CheckResult]:
    """Every enabled reclake check over the statistics of this run.

    `upstream` is (source, rows it recorded for the interval) for tables whose rows an
    upstream job counts; an interval it records as empty skips the volume checks.
    """
    out: list[chk.CheckResult] = []
    source, expected = upstream or ("", None)
    if upstream is not None:
        out.append(chk.upstream_rows(stats["row_count"], expected, source))
    is_quiet = expected == 0 and stats["row_count"] == 0
    if conf.get("freshness", {}).get("enabled"):
        if is_quiet:
            out.append(chk.quiet("freshness", source))
        else:
            out.append(chk.freshness(stats.get("max_time"), start, end, conf["freshness"]))
    if conf.get("row_count_trend", {}).get("enabled"):
        trend = conf["row_count_trend"]
        if is_quiet:
            out.append(chk.quiet("row_count_trend", source))
        else:
            out.append(chk.row_count_trend(stats["row_count"], interval_hours, history, trend))
    out += chk.label_rates(stats.get("label_rates", {}), labels)
    if conf.get("distribution_drift", {}).get("enabled"):
        drift = conf["distribution_drift"]
        current = stats.get("columns", {})
        out += chk.distribution_drift(current, on_baseline_bins, baseline, baseline_note, drift)
    return out


def upstream_record(
    settings: Settings, table: str, start: datetime | None, end: datetime | None
) -> tuple[str, int | None] | None:
    """(source, rows) an upstream job recorded for this table's interval, or None when the
    table has no such record: training samples are one per labeled impression."""
    if table != "training_samples" or start is None or end is None:
        return None
    from reclake.features.labels import logged_impressions

    return "label_impressions", logged_impressions(settings, start, end)


def result_id(table: str, version: int, at: datetime) -> str:
    """Unique, sortable id: <table>-v<version>-<UTC stamp>-<4 hex>."""
    return f"{table}-v{version}-{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def _baseline(
    settings: Settings, table: str, baseline_id: str | None
) -> tuple[ValidationResult | None, str]:
    """The result to compare distributions with, or None and why there is none."""
    if baseline_id:
        return load_result(settings, table, baseline_id), ""
    try:
        from reclake.snapshots import SnapshotNotFound, resolve
    except ImportError:
        return None, "no baseline: the snapshot registry is not available"
    try:
        snapshot = resolve(settings, f"{table}@latest")
    except SnapshotNotFound:
        return None, f"no baseline: no published snapshot of {table}"
    try:
        return load_result(settings, table, snapshot.validation_id), ""
    except KeyError:
        return None, f"no baseline: result {snapshot.validation_id} of {snapshot.id} is missing"
