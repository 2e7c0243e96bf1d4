"""Incremental OPTIMIZE / Z-order, its maintenance log, concurrency with writers, and
`reclake tables` / `reclake history`, on real Delta tables written by Spark."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import replace
from datetime import date

import pytest
from delta.exceptions.base import ConcurrentAppendException
from delta.tables import DeltaTable

from reclake import cli
from reclake.maintenance import deltalog, skipping
from reclake.maintenance import log as mlog
from reclake.maintenance.optimize import optimize_table, partition_predicate, run_optimize
from reclake.maintenance.policy import policy_for
from reclake.maintenance.retry import retry_on_conflict
from reclake.tables import table

TABLE = "events"
SCHEMA = "event_id STRING, user_id BIGINT, item_id BIGINT, event_date DATE"
D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def append(spark, settings, day: date, batch: str, n: int = 6, files: int = 2) -> None:
    """Append `n` events of one day as `files` Parquet files."""
    rows = [(f"{batch}-{i}", (i * 7) % 50, (i * 13) % 40, day) for i in range(n)]
    df = spark.createDataFrame(rows, SCHEMA).repartition(files)
    df.write.format("delta").mode("append").partitionBy("event_date").save(
        table(TABLE).uri(settings)
    )


def files_by_day(settings) -> dict[str, set[str]]:
    """Current data files per partition folder, read with delta-rs."""
    found: dict[str, set[str]] = {}
    for f in deltalog.version_files(table(TABLE).uri(settings)):
        found.setdefault(f.folder, set()).add(f.path)
    return found


def last_commit(spark, settings):
    return DeltaTable.forPath(spark, table(TABLE).uri(settings)).history(1).collect()[0]


@pytest.mark.integration
def test_optimize_touches_only_new_partitions_and_reruns_are_no_ops(
    spark, settings, monkeypatch, capsys
):
    append(spark, settings, D1, "a")  # v0: 2 files in D1
    append(spark, settings, D2, "b")  # v1: 2 files in D2
    append(spark, settings, D1, "c")  # v2: 2 more files in D1

    first = optimize_table(spark, settings, TABLE)
    commit = last_commit(spark, settings)
    assert commit["operation"] == "OPTIMIZE" and first.version_produced == commit["version"] == 3
    zorder = json.loads(commit["operationParameters"]["zOrderBy"])
    assert zorder == list(policy_for(settings, TABLE).zorder_by) == ["user_id", "item_id"]
    assert commit["operationMetrics"]["numRemovedFiles"] == "6"
    assert commit["operationMetrics"]["numAddedFiles"] == "2"
    assert "zOrderStats" in first.metrics  # Z-order ran, not plain bin-packing
    assert sorted(p["event_date"] for p in first.partitions) == ["2026-01-01", "2026-01-02"]
    assert (first.files_before, first.files_after) == (6, 2)

    d2_before = files_by_day(settings)["event_date=2026-01-02"]
    append(spark, settings, D1, "d")  # v4: only D1 changes
    second = optimize_table(spark, settings, TABLE)
    commit = last_commit(spark, settings)
    assert [p["event_date"] for p in second.partitions] == ["2026-01-01"]
    assert commit["operationMetrics"]["numRemovedFiles"] == "3"  # 1 compacted + 2 new
    assert json.loads(commit["operationParameters"]["predicate"]) != []
    assert files_by_day(settings)["event_date=2026-01-02"] == d2_before  # untouched

    # Negative case: nothing was written since, so no OPTIMIZE and no new version.
    third = optimize_table(spark, settings, TABLE)
    assert third.version_produced is None and third.partitions == []
    assert third.skipped_reason == "no commits since the last optimize"
    assert last_commit(spark, settings)["version"] == second.version_produced == 5
    uri = table(TABLE).uri(settings)
    assert spark.read.format("delta").load(uri).count() == 24

    records = mlog.records(settings, TABLE, mlog.OPTIMIZE)  # newest first
    assert [r.version_produced for r in records] == [None, 5, 3]
    assert [len(r.partitions) for r in records] == [0, 1, 2]
    assert [r.scanned_through_version for r in records] == [5, 4, 2]

    # `reclake tables` and `reclake history` read the same lake (JVM-free).
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    capsys.readouterr()
    assert cli.main(["tables", "--json"]) == 0
    health = json.loads(capsys.readouterr().out)
    rows = {r["table"]: r for r in health["tables"]}
    events = rows[TABLE]
    assert events["exists"] and events["files"] == 2 and events["latest_version"] == 5
    assert events["rows"] == 24
    # Written straight to the table, not by the ingest: no logs, no quarantine table.
    assert health["freshness"] == {"ingested": None, "labeled": None, "sampled": None}
    assert health["quarantine"] == {}
    assert events["last_optimize"] == records[0].finished_at and events["last_vacuum"] is None
    assert events["small_file_ratio"] == 1.0  # KB-sized files against a 32 MiB target
    assert (
        events["total_bytes"] == sum(f.size for f in deltalog.version_files(uri))
        and events["avg_file_bytes"] == events["total_bytes"] // 2
    )
    assert rows["users"]["exists"] is False

    assert cli.main(["tables"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:4] == ["table", "latest_version", "rows", "files"]
    assert text[1].split()[:4] == [TABLE, "5", "24", "2"]
    assert text[2:] == ["", "newest hour: ingested -, labeled -, sampled -"]

    assert cli.main(["history", TABLE, "--limit", "3", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["version"] for h in history] == [5, 4, 3]
    assert [h["operation"] for h in history] == ["OPTIMIZE", "WRITE", "OPTIMIZE"]
    assert history[0]["metrics"]["numRemovedFiles"] == "3"
    assert cli.main(["history", "nope"]) == 1


def hourly_events(spark, uri: str, users: list[int], items: list[int]) -> None:
    """Three appends per date of one row per (user, item) pair: every file spans all keys."""
    for day in (D1, D2):
        for hour in range(3):
            rows = [
                (f"{day}-{hour}-{i}", u, it, day)
                for i, (u, it) in enumerate(zip(users, items, strict=True))
            ]
            df = spark.createDataFrame(rows, SCHEMA).repartition(2)
            df.write.format("delta").mode("append").partitionBy("event_date").save(uri)


@pytest.mark.integration
def test_policy_zorder_lets_user_and_item_lookups_skip_files(spark, settings):
    settings = replace(settings, maintenance_target_file_bytes=4 * 1024)
    uri = table(TABLE).uri(settings)
    rng = random.Random(5)
    users = [rng.randrange(1, 5000) for _ in range(3000)]
    items = [rng.randrange(1, 3000) for _ in range(3000)]
    hourly_events(spark, uri, users, items)
    before = skipping.file_stats(uri)
    assert policy_for(settings, TABLE).zorder_by == ("user_id", "item_id")

    report = optimize_table(spark, settings, TABLE)
    after = skipping.file_stats(uri)
    assert report.files_after == after.num_rows
    assert min(skipping.files_per_partition(after, "event_date").values()) >= 12
    lookups = [("user_id", users[i], users[i]) for i in (0, 1500, 2999)]
    lookups += [("item_id", lo, lo + 30) for lo in (1, 1400, 2960)]  # 1 % of the item ids
    for column, low, high in lookups:
        read = skipping.overlapping(after, column, low, high)
        # Two curve columns: about 1/sqrt(files per date) of the files, far from all of them.
        assert read.of_table <= 0.5
        assert skipping.overlapping(before, column, low, high).of_table == 1.0
        df = spark.read.format("delta").load(uri).where(f"{column} BETWEEN {low} AND {high}")
        assert skipping.scanned_files(df) == read.read  # Spark skips what the stats say
        keys = users if column == "user_id" else items
        assert df.count() == 6 * sum(low <= k <= high for k in keys)  # no row skipped wrongly


@pytest.mark.integration
def test_one_zorder_column_gives_disjoint_key_ranges(spark, settings):
    uri = table(TABLE).uri(settings)
    # 7919 is coprime with 5000: the 2000 rows of an append have 2000 distinct users.
    users = [(i * 7919) % 5000 for i in range(2000)]
    hourly_events(spark, uri, users, [i % 97 for i in range(2000)])
    before = skipping.file_stats(uri)
    policy = replace(
        policy_for(settings, TABLE), zorder_by=("user_id",), target_file_bytes=16 * 1024
    )

    run_optimize(spark, uri, policy, None)
    after = skipping.file_stats(uri)
    per_date = skipping.files_per_partition(after, "event_date")
    assert min(per_date.values()) >= 3
    # One Z-order column: files of a date hold (nearly) disjoint user_id ranges.
    for lookup in (users[1], users[777], users[1999]):
        read = skipping.overlapping(after, "user_id", lookup, lookup)
        assert read.read <= 2 * len(per_date) < after.num_rows
        assert read.read < skipping.overlapping(before, "user_id", lookup, lookup).read
        df = spark.read.format("delta").load(uri).where(f"user_id = {lookup}")
        assert skipping.scanned_files(df) == read.read  # Spark skips what the stats say
        assert df.count() == 6  # once per append: no row skipped wrongly
    one_day = (
        spark.read.format("delta").load(uri).where(f"user_id = {users[5]} AND event_date = '{D2}'")
    )
    read = skipping.overlapping(after, "user_id", users[5], users[5], "event_date", {D2})
    assert skipping.scanned_files(one_day) == read.read <= 2
    assert read.partition_files == per_date[D2]


@pytest.mark.integration
def test_optimize_beside_a_concurrent_appender_loses_nothing(spark, settings):
    append(spark, settings, D1, "seed", n=4)
    append(spark, settings, D2, "seed2", n=4)
    written = [8]
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(6):
                day = D1 if i % 2 else D2
                retry_on_conflict(lambda i=i, day=day: append(spark, settings, day, f"w{i}", n=5))
                written.append(5)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reports = []
    try:
        while not done.is_set() or not reports:
            reports.append(optimize_table(spark, settings, TABLE))
    finally:
        thread.join()
    reports.append(optimize_table(spark, settings, TABLE))  # picks up the last appends

    assert errors == []
    uri = table(TABLE).uri(settings)
    assert spark.read.format("delta").load(uri).count() == sum(written) == 38
    assert sum(1 for r in reports if r.version_produced is not None) >= 2
    ids = spark.read.format("delta").load(uri).select("event_id").distinct().count()
    assert ids == 38  # no duplicate and no lost row
    # After the final run every partition is compact: one file each.
    assert all(len(v) == 1 for v in files_by_day(settings).values())
    logged = mlog.records(settings, TABLE, mlog.OPTIMIZE)
    assert len(logged) == len(reports)
    assert sum(r.conflicts_retried for r in logged) == sum(r.conflicts_retried for r in reports)


def test_retry_backs_off_on_delta_conflicts_and_reraises_other_errors():
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentAppendException(message="files were added to partition [d=1]")
        return "committed"

    outcome = retry_on_conflict(flaky, base_delay=0.1, sleep=sleeps.append)
    assert (outcome.value, outcome.conflicts, len(calls)) == ("committed", 2, 3)
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.5  # grows (with jitter)

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    calls.clear()
    with pytest.raises(ValueError):
        retry_on_conflict(broken, sleep=sleeps.append)
    assert len(calls) == 1

    def always_conflicts() -> None:
        raise ConcurrentAppendException(message="again")

    with pytest.raises(ConcurrentAppendException):
        retry_on_conflict(always_conflicts, attempts=3, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        ([], None),  # nothing to select
        ([()], None),  # unpartitioned table: the whole table
        ([(("d", "2026-01-01"),)], "(`d` = '2026-01-01')"),
        ([(("d", None),)], "(`d` IS NULL)"),  # null partition value
        ([(("s", "it's"),)], "(`s` = 'it\\'s')"),  # quote is escaped
        (
            [(("d", "2"), ("h", "1")), (("d", "1"), ("h", "0"))],
            "(`d` = '1' AND `h` = '0') OR (`d` = '2' AND `h` = '1')",
        ),
    ],
)
def test_partition_predicate(partitions, expected):
    assert partition_predicate(partitions) == expected
