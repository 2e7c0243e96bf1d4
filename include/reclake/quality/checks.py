"""Checks that GX expresses poorly, computed by reclake from table statistics: rows against
what the upstream job recorded, freshness, row count against the trailing average of earlier
passing runs, label rates, and feature drift
(PSI) against the statistics recorded for the last published snapshot. Pure functions."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from reclake.quality.results import ValidationResult
from reclake.timeutil import iso, parse_utc

# Keeps PSI finite when a bin is empty on one side.
_PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one reclake check; success None means skipped (see note)."""

    check: str
    success: bool | None
    observed: Any = None
    threshold: Any = None
    column: str | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        """True only for a check that ran and failed (skipped checks never block)."""
        return self.success is False

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form stored in ValidationResult.checks (and .failures when failed)."""
        record = asdict(self)
        record["kind"] = "check"
        record["expectation"] = self.check  # failures name what failed under one key
        record["message"] = self.message
        return record

    @property
    def message(self) -> str:
        """One readable line: what was observed against which threshold."""
        target = f"({self.column})" if self.column else ""
        if self.success is None:
            return f"{self.check}{target}: skipped: {self.note}"
        return f"{self.check}{target}: {self.note}"


def skipped(check: str, note: str, column: str | None = None) -> CheckResult:
    """A check that could not run, with the reason."""
    return CheckResult(check, None, column=column, note=note)


def upstream_rows(row_count: int, expected: int | None, source: str) -> CheckResult:
    """The interval holds exactly the rows its upstream job recorded (e.g. one sample per
    labeled impression); skipped when no upstream record covers the whole interval."""
    if expected is None:
        return skipped("upstream_rows", f"no {source} record for every hour of the interval")
    note = f"{row_count} rows, {source} recorded {expected}"
    return CheckResult("upstream_rows", row_count == expected, row_count, expected, note=note)


def quiet(check: str, source: str) -> CheckResult:
    """A volume check skipped because the upstream record says the interval is empty."""
    return skipped(check, f"quiet interval: {source} recorded no rows for it")


def freshness(
    max_time: datetime | str | None, start: datetime | None, end: datetime | None, conf: dict
) -> CheckResult:
    """The newest row of the interval must fall within its last max_lag_minutes."""
    if start is None or end is None:
        return skipped("freshness", "no data interval given")
    lag = timedelta(minutes=conf["max_lag_minutes"])
    window = [iso(max(start, end - lag)), iso(end)]
    if max_time is None:
        return CheckResult("freshness", False, None, window, note="no rows in the data interval")
    newest = parse_utc(max_time)
    ok = end - lag <= newest < end
    note = f"newest row at {iso(newest)}, expected in [{window[0]}, {window[1]})"
    return CheckResult("freshness", ok, iso(newest), window, note=note)


def row_count_trend(
    row_count: int, interval_hours: float | None, history: list[ValidationResult], conf: dict
) -> CheckResult:
    """Row count within [min_ratio, max_ratio] x the mean of recent passing comparable runs.

    Comparable means the same table and the same interval length, so an hourly run is never
    compared with a daily one.
    """
    earlier = [
        r.statistics["row_count"]
        for r in history
        if r.success
        and "row_count" in r.statistics
        and r.statistics.get("interval_hours") == interval_hours
    ][-conf["history_runs"] :]
    if not earlier:
        return skipped("row_count_trend", "no earlier passing run of the same interval length")
    average = sum(earlier) / len(earlier)
    low, high = conf["min_ratio"], conf["max_ratio"]
    ratio = row_count / average if average else math.inf
    ok = low <= ratio <= high
    note = (
        f"{row_count} rows = {ratio:.2f}x the average {average:.1f} of the last "
        f"{len(earlier)} passing runs (allowed {low}x-{high}x)"
    )
    observed = {"row_count": row_count, "trailing_average": average, "ratio": ratio}
    return CheckResult("row_count_trend", ok, observed, [low, high], note=note)


def label_rates(
    rates: dict[str, float | None], bounds: dict[str, dict[str, float | None]]
) -> list[CheckResult]:
    """Each label's positive rate within its bounds (a bound of null is not enforced)."""
    out = []
    for label, limit in bounds.items():
        low, high = limit.get("min"), limit.get("max")
        if low is None and high is None:
            continue
        rate = rates.get(label)
        if rate is None:
            out.append(skipped("label_rate", "no rows to compute a rate from", label))
            continue
        ok = (low is None or rate >= low) and (high is None or rate <= high)
        note = f"rate {rate:.4f}, expected in [{low}, {high}]"
        out.append(CheckResult("label_rate", ok, rate, [low, high], label, note))
    return out


def column_rules(
    rules: list[dict[str, Any]], violations: list[int | None], row_count: int
) -> list[CheckResult]:
    """One result per declared column rule (NOT NULL, feature range) from its violation count."""
    out = []
    for rule, bad in zip(rules, violations, strict=True):
        name = "column_not_null" if rule["rule"] == "not_null" else "column_range"
        if rule["rule"] == "not_null":
            threshold, what = None, "null"
        else:
            threshold = [rule.get("min"), rule.get("max")]
            what = f"outside [{rule.get('min')}, {rule.get('max')}]"
        if bad is None:
            out.append(skipped(name, "column missing", rule["column"]))
            continue
        pct = 100 * bad / row_count if row_count else 0.0
        note = f"{bad} of {row_count} rows {what} ({pct:.1f}%)"
        allowed = (1.0 - rule.get("mostly", 1.0)) * row_count
        if "mostly" in rule:
            note += f", at most {100 * (1.0 - rule['mostly']):.0f}% allowed"
        out.append(CheckResult(name, bad <= allowed, bad, threshold, rule["column"], note))
    return out


def psi(baseline: list[float], current: list[float]) -> float:
    """Population stability index of two binned distributions (fractions per bin)."""
    if len(baseline) != len(current):
        raise ValueError(f"bin counts differ: {len(baseline)} vs {len(current)}")
    total = 0.0
    for b, c in zip(baseline, current, strict=True):
        b, c = max(b, _PSI_EPSILON), max(c, _PSI_EPSILON)
        total += (c - b) * math.log(c / b)
    return total


def distribution_drift(
    current: dict[str, dict[str, Any]],
    current_on_baseline_bins: dict[str, list[float] | None],
    baseline: ValidationResult | None,
    baseline_note: str,
    conf: dict,
) -> list[CheckResult]:
    """PSI of each key feature on the baseline's decile bins; fails above max_psi.

    `current` and the baseline hold per-column statistics; the observed value also reports
    both means and medians so a reviewer sees the direction of the shift.
    """
    columns = conf.get("columns") or []
    if not columns:
        return []
    if baseline is None:
        return [skipped("distribution_drift", baseline_note)]
    limit = conf["max_psi"]
    base_columns = baseline.statistics.get("columns", {})
    out = []
    for col in columns:
        base, now = base_columns.get(col), current.get(col)
        fractions = current_on_baseline_bins.get(col)
        if not base or not base.get("histogram") or not now or fractions is None:
            out.append(skipped("distribution_drift", "no values on one side", col))
            continue
        value = psi(base["histogram"]["fractions"], fractions)
        observed = {
            "psi": round(value, 4),
            "mean": now.get("mean"),
            "baseline_mean": base.get("mean"),
            "p50": now.get("quantiles", {}).get("p50"),
            "baseline_p50": base.get("quantiles", {}).get("p50"),
        }
        note = (
            f"PSI {value:.3f} vs {baseline.id} (max {limit}); mean {now.get('mean')} vs "
            f"{base.get('mean')}, p50 {observed['p50']} vs {observed['baseline_p50']}"
        )
        out.append(CheckResult("distribution_drift", value <= limit, observed, limit, col, note))
    return out
