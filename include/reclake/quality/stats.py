"""Table statistics recorded with every validation result (row count, newest row, numeric
column distributions, label rates): the history that trend and drift checks compare with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Deciles: the quantiles reported and the bin edges of the histogram that PSI is computed on.
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def table_statistics(
    df: DataFrame,
    *,
    time_column: str | None,
    numeric_columns: list[str],
    label_columns: list[str],
) -> dict[str, Any]:
    """Statistics of a DataFrame in one aggregation pass (plus one for the histograms)."""
    from pyspark.sql import functions as F

    present = set(df.columns)
    numeric = [c for c in numeric_columns if c in present]
    labels = [c for c in label_columns if c in present]
    aggs = [F.count(F.lit(1)).alias("row_count")]
    if time_column:
        aggs.append(F.max(time_column).alias("max_time"))
    for c in numeric:
        value = F.col(c).cast("double")
        aggs += [
            F.count(value).alias(f"{c}__n"),
            F.mean(value).alias(f"{c}__mean"),
            F.stddev_samp(value).alias(f"{c}__stddev"),
            F.min(value).alias(f"{c}__min"),
            F.max(value).alias(f"{c}__max"),
            F.percentile_approx(value, list(QUANTILES), 10000).alias(f"{c}__q"),
        ]
    aggs += [F.mean(F.col(c).cast("double")).alias(f"{c}__rate") for c in labels]
    row = df.agg(*aggs).collect()[0].asDict()

    columns: dict[str, dict[str, Any]] = {}
    for c in numeric:
        quantiles = row[f"{c}__q"] or []
        columns[c] = {
            "count": row[f"{c}__n"],
            "nulls": row["row_count"] - row[f"{c}__n"],
            "mean": row[f"{c}__mean"],
            "stddev": row[f"{c}__stddev"],
            "min": row[f"{c}__min"],
            "max": row[f"{c}__max"],
            "quantiles": {
                f"p{round(q * 100)}": v for q, v in zip(QUANTILES, quantiles, strict=False)
            },
        }
    edges = {c: sorted(set(columns[c]["quantiles"].values())) for c in numeric if row[f"{c}__n"]}
    for c, fractions in bin_fractions(df, edges).items():
        columns[c]["histogram"] = {"edges": edges[c], "fractions": fractions}
    return {
        "row_count": row["row_count"],
        "max_time": row.get("max_time").isoformat() if row.get("max_time") else None,
        "columns": columns,
        "label_rates": {c: row[f"{c}__rate"] for c in labels},
    }


def bin_fractions(df: DataFrame, edges: dict[str, list[float]]) -> dict[str, list[float] | None]:
    """Share of each column's non-null values per bin (-inf, e0], (e0, e1], ... (ek, inf).

    None for a column that is missing or has no values.
    """
    from pyspark.sql import functions as F

    usable = {c: e for c, e in edges.items() if c in df.columns}
    if not usable:
        return dict.fromkeys(edges)
    aggs = []
    for c, cuts in usable.items():
        value = F.col(c).cast("double")
        aggs.append(F.count(value).alias(f"{c}__n"))
        for i in range(len(cuts) + 1):
            cond = value.isNotNull()
            if i > 0:
                cond = cond & (value > F.lit(cuts[i - 1]))
            if i < len(cuts):
                cond = cond & (value <= F.lit(cuts[i]))
            aggs.append(F.sum(F.when(cond, 1).otherwise(0)).alias(f"{c}__b{i}"))
    row = df.agg(*aggs).collect()[0].asDict()
    out: dict[str, list[float] | None] = dict.fromkeys(edges)
    for c, cuts in usable.items():
        n = row[f"{c}__n"]
        out[c] = [row[f"{c}__b{i}"] / n for i in range(len(cuts) + 1)] if n else None
    return out


def rule_violations(df: DataFrame, rules: list[dict[str, Any]]) -> list[int | None]:
    """Rows breaking each column rule (not_null / range), all in one aggregation pass.

    None for a rule whose column is missing (the GX column-set expectation reports that).
    """
    from pyspark.sql import functions as F

    aggs = []
    for i, rule in enumerate(rules):
        if rule["column"] not in df.columns:
            continue
        value = F.col(rule["column"])
        if rule["rule"] == "not_null":
            bad = value.isNull()
        else:
            bad = F.lit(False)
            if rule.get("min") is not None:
                bad = bad | (value < F.lit(rule["min"]))
            if rule.get("max") is not None:
                bad = bad | (value > F.lit(rule["max"]))
        aggs.append(F.sum(F.when(bad, 1).otherwise(0)).alias(f"r{i}"))
    row = df.agg(*aggs).collect()[0].asDict() if aggs else {}
    return [row.get(f"r{i}") for i in range(len(rules))]
