"""The ingest benchmark's floors do the ingest's work minus validation: on a drop without
faults they write exactly the rows the ingest writes to bronze."""

from __future__ import annotations

import pytest

from bench.bench_ingest import floor
from reclake.generator import GeneratorConfig, generate
from reclake.ingest import ingest_events
from reclake.tables import table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOURS = ("2026-11-20T00:00Z", "2026-11-20T01:00Z", "2026-11-20T02:00Z")


def test_floors_write_the_ingests_rows_on_a_clean_drop(spark, settings, tmp_path):
    clean = GeneratorConfig(events_per_hour=3000, malformed_rate=0, bad_field_rate=0)
    generate(settings, HOURS[0], HOURS[2], clean)
    ingest_events(spark, settings, HOURS[0], HOURS[1])
    report = ingest_events(spark, settings, HOURS[1], HOURS[2]).totals()
    assert report["quarantined_rows"] == 0
    assert report["duplicates_in_drop"] > 0 and report["duplicates_in_bronze"] > 0

    deduped = floor(spark, settings, HOURS[1], (tmp_path / "dedupe").as_uri(), dedupe=True)
    written = floor(spark, settings, HOURS[1], (tmp_path / "write").as_uri(), dedupe=False)

    assert deduped == report["bronze_rows"]
    assert written == report["input_lines"]
    dedupe_rows = spark.read.format("delta").load((tmp_path / "dedupe").as_uri())
    bronze = spark.read.format("delta").load(table("events").uri(settings))
    hour_rows = bronze.where("arrival_hour = timestamp'2026-11-20 01:00:00'")
    assert sorted(dedupe_rows.select("event_id").toPandas()["event_id"]) == sorted(
        hour_rows.select("event_id").toPandas()["event_id"]
    )
