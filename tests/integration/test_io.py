"""io.replace_where: the rows and version it reports come from the commit it made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reclake import io, lakefs
from reclake.tables import TableSpec

SPEC = TableSpec("t", "t", keys=("id",), partition_by=("day",))


def _frame(spark, rows):
    return spark.createDataFrame(rows, "id INT, day STRING, hour INT")


def _ids(spark, settings) -> list[int]:
    return sorted(r.id for r in io.read_table(spark, SPEC, settings).collect())


def test_replace_where_reports_the_rows_it_wrote(spark, settings):
    first = io.replace_where(
        _frame(spark, [(1, "a", 0), (2, "a", 1), (3, "b", 0)]), SPEC, settings, "true"
    )
    assert (first.rows, first.version) == (3, 0)  # the write created the table

    # A predicate on a non-partition column rewrites day a's file: the kept row (id 1) is
    # copied into the new file and must not count as written.
    second = io.replace_where(
        _frame(spark, [(4, "a", 1)]), SPEC, settings, "day = 'a' AND hour = 1"
    )
    assert (second.rows, second.version) == (1, 1)
    assert _ids(spark, settings) == [1, 3, 4]

    # Nothing to add and nothing matched: no commit, so nothing written and the same version.
    third = io.replace_where(_frame(spark, []), SPEC, settings, "day = 'z'")
    assert (third.rows, third.version) == (0, 1)
    assert _ids(spark, settings) == [1, 3, 4]


# About 30 s on the loaded CI machine (a Python UDF worker and a second process): slow, to
# keep make test's budget; the soak's runs retry such conflicts for real.
@pytest.mark.slow
def test_replace_where_retries_a_concurrent_commit_and_reports_its_own(
    spark, settings, tmp_path, caplog
):
    from pyspark.sql import functions as F

    from reclake.maintenance.retry import RETRY_LOG_MARKER
    from reclake.snapshots.deltars import open_table

    io.replace_where(_frame(spark, [(1, "a", 0), (2, "b", 0)]), SPEC, settings, "true")
    uri = SPEC.uri(settings)
    marker, python = str(tmp_path / "meddled"), sys.executable
    commit = (
        "from deltalake import DeltaTable; "
        f"DeltaTable({str(tmp_path / 'lake' / 't')!r}).alter.set_table_properties("
        "{'delta.logRetentionDuration': 'interval 31 days'})"
    )

    @F.udf("int")
    def meddle(value):
        # Runs inside the write, after it read the table: the first call commits a property
        # change (what vacuum's log-retention raise does), so this attempt must conflict.
        import os
        import subprocess

        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return value
        # Another process commits it (Spark's Python worker has none of the venv's packages).
        subprocess.run([python, "-c", commit], check=True)
        return value

    df = _frame(spark, [(3, "a", 1), (4, "a", 2)]).withColumn("id", meddle("id"))
    with caplog.at_level("WARNING", logger="reclake.maintenance.retry"):
        result = io.replace_where(df, SPEC, settings, "day = 'a'")

    assert [r for r in caplog.messages if RETRY_LOG_MARKER in r]  # it conflicted, then retried
    history = {c["version"]: c["operation"] for c in open_table(uri).history()}
    assert history == {0: "WRITE", 1: "SET TBLPROPERTIES", 2: "WRITE"}
    assert (result.rows, result.version) == (2, 2)
    assert _ids(spark, settings) == [2, 3, 4]


def test_own_commit_is_the_tagged_one_not_the_newest(spark, settings):
    from reclake.snapshots.deltars import open_table

    io.replace_where(_frame(spark, [(1, "a", 0)]), SPEC, settings, "true")
    uri = SPEC.uri(settings)
    tag = io.write_tag("soak:test")
    _frame(spark, [(2, "b", 0)]).write.format("delta").mode("append").option(
        "userMetadata", tag
    ).save(uri)
    # A commit lands right after it (OPTIMIZE, a property change) before its history is read.
    open_table(uri).alter.set_table_properties({"delta.logRetentionDuration": "interval 31 days"})

    assert tag.startswith("soak:test reclake-write:")
    assert io.own_commit(uri, 0, tag).version == 1
    assert io.own_commit(uri, 1, tag) is None  # not after version 1: the write made none


def test_ensure_table_creates_over_the_empty_log_of_a_killed_creation(spark, settings):
    """A creation SIGKILLed before its first commit leaves `_delta_log/_staged_commits`, empty;
    Delta then said the table "doesn't exist" to every re-run (found by make chaos)."""
    spec = TableSpec("chaos_t", "chaos/t", ("id",))
    log = Path(lakefs.local_path(spec.uri(settings))) / "_delta_log" / "_staged_commits"
    log.mkdir(parents=True)

    io.ensure_table(spark, spec, "id BIGINT", settings)

    assert io.is_delta_table(spark, spec.uri(settings))
    assert any(p.suffix == ".json" for p in log.parent.iterdir())
