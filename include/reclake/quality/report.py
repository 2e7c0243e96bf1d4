"""Readable validation output: GX expectation results turned into failure records with a
one-line message, and the summary printed by the validate job and CLI. Pure."""

from __future__ import annotations

from typing import Any

from reclake.quality.results import ValidationResult

# Kwargs that describe where GX ran, not what was expected.
_NOT_EXPECTED = {"batch_id", "column", "column_list", "result_format", "catch_exceptions"}


def expectation_failure(result: dict[str, Any]) -> dict[str, Any]:
    """The failure record of one failed GX expectation result (GX's JSON form)."""
    config = result.get("expectation_config") or {}
    kind = config.get("type", "?")
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or None
    observed = dict(result.get("result") or {})
    observed.pop("partial_unexpected_index_list", None)
    expected = {k: v for k, v in kwargs.items() if k not in _NOT_EXPECTED}
    error = _exception_message(result.get("exception_info"))
    target = f"({column})" if column else ""
    return {
        "kind": "expectation",
        "expectation": kind,
        "column": column,
        "observed": observed,
        "expected": expected,
        "message": f"{kind}{target}: "
        + (f"error: {error}" if error else _observed(kind, observed, expected)),
    }


def _observed(kind: str, observed: dict[str, Any], expected: dict[str, Any]) -> str:
    """What GX saw, in words: counts of offending rows or the observed value."""
    if "unexpected_count" in observed:
        bad, total = observed["unexpected_count"], observed.get("element_count")
        pct = observed.get("unexpected_percent") or 0.0
        what = {
            "expect_column_values_to_not_be_null": "null",
            "expect_column_values_to_be_unique": "duplicated",
            "expect_compound_columns_to_be_unique": "duplicated",
        }.get(kind, "unexpected")
        text = f"{bad} of {total} rows {what} ({pct:.1f}%)"
        sample = [v for v in observed.get("partial_unexpected_list") or [] if v is not None][:3]
        if sample:
            text += f", e.g. {sample}"
        if expected:
            text += f"; expected {_kwargs(expected)}"
        return text
    if "observed_value" in observed:
        value = observed["observed_value"]
        mismatch = (observed.get("details") or {}).get("mismatched")
        if mismatch:
            value = mismatch
        return f"observed {value}; expected {_kwargs(expected)}"
    return f"failed; expected {_kwargs(expected)}"


def _kwargs(expected: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in expected.items()) or "-"


def _exception_message(info: Any) -> str | None:
    """GX reports metric errors per metric (dict of dicts) or flat; return the first message."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def summary_lines(result: ValidationResult) -> list[str]:
    """Human summary: verdict, each failure on its own line, skipped checks, id and docs."""
    verdict = "PASSED" if result.success else "FAILED"
    interval = f" [{result.interval_start}, {result.interval_end})" if result.interval_start else ""
    stats = result.statistics
    lines = [
        f"{result.table} v{result.version}{interval}: {verdict} "
        f"({stats.get('row_count')} rows, {stats.get('expectations_evaluated')} expectations, "
        f"{len(result.checks)} checks, {len(result.failures)} failures)"
    ]
    lines += [f"  FAIL {f['message']}" for f in result.failures]
    lines += [f"  skip {c['message']}" for c in result.checks if c.get("success") is None]
    lines.append(f"result id: {result.id}")
    lines.append(f"data docs: {result.data_docs or '-'}")
    return lines
