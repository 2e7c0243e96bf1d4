"""The quality gate on real Spark + Delta + Great Expectations: tiny tables with the declared
schemas are written under the test's lake, then validated as the job and CLI do."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reclake.cli import main as cli_main
from reclake.features.definitions import DEFINITIONS, sample_feature_columns
from reclake.io import schema_from_ddl
from reclake.quality.results import list_results, load_result
from reclake.quality.validate import validate_table
from reclake.tables import BRONZE_EVENTS_DDL, table

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
ROWS = 40
JOB = Path(__file__).resolve().parents[2] / "jobs" / "validate.py"


def nullable(schema):
    """The declared schema with every column nullable, so tests can inject bad rows."""
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, f.dataType, True) for f in schema.fields])


def sample_row(i: int) -> dict:
    """One training sample of the declared schema; row i lands at START + 3i minutes."""
    t = START + timedelta(minutes=3 * i)
    played = i % 3 == 0
    row = {
        "event_id": f"e{i}",
        "request_id": f"r{i}",
        "user_id": 1 + i % 5,
        "item_id": 100 + i % 7,
        "position": i % 10,
        "event_time": t,
        "event_hour": t.replace(minute=0),
        "played": played,
        "watch_ms": 1000 * i if played else 0,
        "finished": False,
        "liked": i % 9 == 0,
        "shared": False,
        "skipped": not played,
        "user_last_played": [7, 8],
        "user_last_played_len": 2,
        "item_category": "music",
        "item_duration_ms": 60000,
        "item_age_hours": 3.5,
        "user_country": "DE",
        "user_device": "ios",
        "user_age_bucket": "25-34",
        "sample_date": t.date(),
    }
    for col in sample_feature_columns():
        if col.kind == "ratio":
            row[col.name] = (i % 5) / 5
        else:
            row[col.name] = i % 4 if col.kind == "count" else 500 * (i % 4)
    return row


def event_row(i: int) -> dict:
    """One bronze event; row i lands at START + 3i minutes."""
    t = START + timedelta(minutes=3 * i)
    return {
        "event_id": f"e{i}",
        "event_type": "play",
        "event_time": t,
        "user_id": 1 + i % 5,
        "item_id": 100 + i % 7,
        "request_id": f"r{i}",
        "position": None,
        "watch_ms": 1000 * i,
        "event_hour": t.replace(minute=0),
        "arrival_hour": t.replace(minute=0),
        "late_hours": 0,
        "beyond_lateness": False,
        "source_file": "f.jsonl.gz",
        "event_date": t.date(),
    }


def write(spark, settings, name: str, ddl: str, rows: list[dict]) -> None:
    """Overwrite the table with these rows (a new Delta version)."""
    spec = table(name)
    schema = nullable(schema_from_ddl(spark, ddl))
    df = spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
    df.write.format("delta").mode("overwrite").partitionBy(*spec.partition_by).save(
        spec.uri(settings)
    )


def write_samples(spark, settings, rows: list[dict]) -> None:
    write(spark, settings, "training_samples", DEFINITIONS.samples_ddl(), rows)


def failed(result) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in result.failures}


def test_clean_samples_pass_and_result_is_persisted(spark, settings):
    write_samples(spark, settings, [sample_row(i) for i in range(ROWS)])

    result = validate_table(spark, settings, "training_samples", start=START, end=END)

    assert result.success, result.failures
    assert result.failures == []
    assert result.version == 0
    assert load_result(settings, "training_samples", result.id) == result
    assert [r.id for r in list_results(settings, "training_samples")] == [result.id]
    assert result.id.startswith("training_samples-v0-")
    assert result.statistics["row_count"] == ROWS
    # 14 of 40 rows are plays (i % 3 == 0).
    assert result.statistics["label_rates"]["played"] == pytest.approx(14 / 40)
    assert result.statistics["columns"]["user_plays_24h"]["max"] == 3.0
    checks = {(c["check"], c["column"]): c for c in result.checks}
    assert checks[("freshness", None)]["success"] is True
    assert checks[("label_rate", "played")]["success"] is True
    assert checks[("row_count_trend", None)]["success"] is None  # no history yet
    assert "no baseline" in checks[("distribution_drift", None)]["note"]
    assert Path(result.data_docs).name == "index.html"
    assert Path(result.data_docs).is_file()
    assert Path(result.data_docs).is_relative_to(Path(settings.table_uri("_reclake")[7:]))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # a play that reports negative watch time
        (
            lambda rows: rows[4].update(watch_ms=-5),
            ("expect_column_values_to_be_between", "watch_ms"),
        ),
        # the same sample written twice
        (
            lambda rows: rows.append(dict(rows[0])),
            ("expect_column_values_to_be_unique", "event_id"),
        ),
        # a negative ratio, checked because the feature definitions declare it
        (
            lambda rows: rows[2].update(item_like_rate_7d=-0.5),
            ("column_range", "item_like_rate_7d"),
        ),
        # a rate above 1 in more rows than the tolerance allows (1 of 40 would pass)
        (
            lambda rows: [rows[i].update(item_like_rate_7d=1.5) for i in range(3)],
            ("column_range", "item_like_rate_7d"),
        ),
    ],
    ids=["negative_watch_ms", "duplicate_key", "negative_ratio", "rates_above_one"],
)
def test_bad_samples_fail_with_the_expectation_named(spark, settings, mutate, expected):
    rows = [sample_row(i) for i in range(ROWS)]
    mutate(rows)
    write_samples(spark, settings, rows)

    result = validate_table(spark, settings, "training_samples", start=START, end=END)

    assert not result.success
    assert failed(result) == {expected}
    assert load_result(settings, "training_samples", result.id).success is False


def test_row_count_drop_against_trailing_average_fails(spark, settings):
    full = [event_row(i) for i in range(ROWS)]
    write(spark, settings, "events", BRONZE_EVENTS_DDL, full)
    first = validate_table(spark, settings, "events", start=START, end=END)
    second = validate_table(spark, settings, "events", start=START, end=END)
    assert first.success and second.success, first.failures + second.failures
    # More than half of the rows disappear, spread over the interval (so it stays fresh):
    # 16 of 40 remain, 0.4x the trailing average.
    write(
        spark, settings, "events", BRONZE_EVENTS_DDL, [r for i, r in enumerate(full) if i % 5 < 2]
    )

    dropped = validate_table(spark, settings, "events", start=START, end=END)

    assert not dropped.success
    assert failed(dropped) == {("row_count_trend", None)}
    trend = next(c for c in dropped.checks if c["check"] == "row_count_trend")
    assert trend["observed"] == {"row_count": 16, "trailing_average": 40.0, "ratio": 0.4}
    assert trend["threshold"] == [0.5, 2.0]
    assert dropped.version == 1


def test_shifted_feature_distribution_fails_against_latest_snapshot(spark, settings):
    from reclake.snapshots import SnapshotGateError, publish, resolve

    write_samples(spark, settings, [sample_row(i) for i in range(ROWS)])
    baseline = validate_table(spark, settings, "training_samples", start=START, end=END)
    assert baseline.success, baseline.failures
    published = publish(settings, "training_samples", baseline.version, baseline.id)
    shifted = [sample_row(i) for i in range(ROWS)]
    for row in shifted:
        row["user_plays_24h"] += 50  # every user suddenly played 50 more videos
    write_samples(spark, settings, shifted)

    result = validate_table(spark, settings, "training_samples", start=START, end=END)

    assert not result.success
    assert result.statistics["baseline_id"] == baseline.id  # from training_samples@latest
    assert failed(result) == {("distribution_drift", "user_plays_24h")}
    drift = {c["column"]: c for c in result.checks if c["check"] == "distribution_drift"}
    assert drift["user_plays_24h"]["observed"]["psi"] > 0.25
    assert drift["user_plays_24h"]["observed"]["mean"] == pytest.approx(51.5)
    assert drift["item_plays_24h"]["success"] is True  # unchanged feature: no drift
    # The failed gate blocks the publish and the previous snapshot stays current.
    with pytest.raises(SnapshotGateError):
        publish(settings, "training_samples", result.version, result.id)
    assert resolve(settings, "training_samples@latest").id == published.id


def load_job():
    spec = importlib.util.spec_from_file_location("validate_job", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_exits_1_and_names_the_null_key(spark, settings, monkeypatch, capsys):
    rows = [sample_row(i) for i in range(ROWS)]
    rows[7]["event_id"] = None  # the sample key: a GX expectation
    rows[8]["user_id"] = None  # a declared NOT NULL column: a reclake column rule
    write_samples(spark, settings, rows)
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)

    code = load_job().main(
        [
            "--table",
            "training_samples",
            "--start",
            "2026-11-20T00:00Z",
            "--end",
            "2026-11-20T02:00Z",
        ]
    )

    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    lines = [
        "  FAIL expect_column_values_to_not_be_null(event_id): 1 of 40 rows null (2.5%)",
        "  FAIL column_not_null(user_id): 1 of 40 rows null (2.5%)",
    ]
    assert lines == [x for x in out if x.startswith("  FAIL")], "\n".join(out)
    final = json.loads(out[-1])
    assert final["table"] == "training_samples"
    assert final["version"] == 0
    assert final["success"] is False
    assert load_result(settings, "training_samples", final["id"]).success is False
    assert f"result id: {final['id']}" in out


def test_cli_usage_errors_exit_2(spark, settings, monkeypatch, capsys):
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)

    assert cli_main(["validate", "no_such_table"]) == 2
    assert "unknown table 'no_such_table'" in capsys.readouterr().err
    # The table is declared but was never written.
    assert cli_main(["validate", "events"]) == 2
    assert "does not exist" in capsys.readouterr().err
    # Only one interval bound.
    assert cli_main(["validate", "events", "--start", "2026-11-20T00:00Z"]) == 2
    assert load_job().main(["--start", "2026-11-20T00:00Z"]) == 2  # --table is required
