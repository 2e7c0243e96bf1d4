"""Config parsing and time helpers: typed env values, URI normalisation, hour arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclake.config import Settings
from reclake.tables import TABLES, table
from reclake.timeutil import floor_hour, hours_between, iso, parse_utc

DRIVER_OPTIONS = "spark.driver.extraJavaOptions"


def test_defaults_are_the_embedded_setup():
    s = Settings.from_env({})
    assert s.spark_master == "local[*]"
    assert s.lake_root.startswith("file://") and s.lake_root.endswith("/lake")
    assert s.landing_uri == s.lake_root + "/landing"
    assert s.allowed_lateness_hours == 2


def test_env_values_are_typed_and_paths_become_uris(tmp_path):
    env = {
        "RECLAKE_LAKE_ROOT": str(tmp_path / "my-lake") + "/",
        "RECLAKE_SPARK_SHUFFLE_PARTITIONS": "16",
        "RECLAKE_JARS_DIR": str(tmp_path),
        "RECLAKE_SPARK_MASTER": "spark://10.0.0.5:7077",
    }
    s = Settings.from_env(env)
    assert s.lake_root == (tmp_path / "my-lake").as_uri()
    assert s.spark_shuffle_partitions == 16 and isinstance(s.spark_shuffle_partitions, int)
    assert s.jars_dir == Path(tmp_path)
    assert s.spark_master == "spark://10.0.0.5:7077"
    assert s.table_uri("bronze/events") == (tmp_path / "my-lake" / "bronze" / "events").as_uri()


def test_jvm_options_reach_driver_and_executors(tmp_path):
    from reclake.spark import spark_conf

    no_archive = {"RECLAKE_JARS_DIR": str(tmp_path)}
    quick = spark_conf(Settings.from_env(no_archive))
    full = spark_conf(
        Settings.from_env({**no_archive, "RECLAKE_SPARK_JVM_OPTIONS": "-XX:+TieredCompilation"})
    )
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        assert quick[key].split() == [
            "-Duser.timezone=UTC",
            "-XX:-DontCompileHugeMethods",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
        ]
        assert full[key].endswith("-XX:-DontCompileHugeMethods -XX:+TieredCompilation")


def test_class_archive_is_mapped_by_a_local_driver_only_when_built(tmp_path):
    from reclake.jvm_archive import ARCHIVE_NAME
    from reclake.spark import spark_conf

    env = {"RECLAKE_JARS_DIR": str(tmp_path)}
    assert "SharedArchiveFile" not in spark_conf(Settings.from_env(env))[DRIVER_OPTIONS]
    (tmp_path / ARCHIVE_NAME).write_bytes(b"")
    conf = spark_conf(Settings.from_env(env))
    flag = f"-XX:SharedArchiveFile={tmp_path / ARCHIVE_NAME}"
    assert flag in conf[DRIVER_OPTIONS].split()
    # Executors of a cluster do not have the file; a remote driver neither.
    assert "SharedArchiveFile" not in conf["spark.executor.extraJavaOptions"]
    remote = spark_conf(Settings.from_env({**env, "RECLAKE_SPARK_MASTER": "spark://h:7077"}))
    assert "SharedArchiveFile" not in remote[DRIVER_OPTIONS]


def test_codegen_is_off_for_the_embedded_setup_and_can_be_turned_on():
    from reclake.spark import spark_conf

    off = spark_conf(Settings.from_env({}))
    assert off["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"
    assert off["spark.sql.codegen.wholeStage"] == "false"
    on = spark_conf(Settings.from_env({"RECLAKE_SPARK_CODEGEN": "true"}))
    assert "spark.sql.codegen.factoryMode" not in on and "spark.sql.codegen.wholeStage" not in on
    with pytest.raises(ValueError, match="RECLAKE_SPARK_CODEGEN='maybe' is not a valid bool"):
        Settings.from_env({"RECLAKE_SPARK_CODEGEN": "maybe"})


def test_object_store_roots_are_kept_verbatim():
    s = Settings.from_env({"RECLAKE_LAKE_ROOT": "s3a://bucket/reclake/"})
    assert s.lake_root == "s3a://bucket/reclake"
    assert table("events").uri(s) == "s3a://bucket/reclake/bronze/events"


def test_bad_int_names_the_variable():
    with pytest.raises(ValueError, match="RECLAKE_ALLOWED_LATENESS_HOURS='two'"):
        Settings.from_env({"RECLAKE_ALLOWED_LATENESS_HOURS": "two"})


def test_unknown_table_lists_known_ones():
    with pytest.raises(KeyError, match="training_samples"):
        table("nope")
    assert len({t.path for t in TABLES.values()}) == len(TABLES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T13:05:09Z", datetime(2026, 11, 20, 13, 5, 9, tzinfo=UTC)),
        # an offset is converted to UTC
        ("2026-11-20T15:05:09+02:00", datetime(2026, 11, 20, 13, 5, 9, tzinfo=UTC)),
        # naive means UTC
        ("2026-11-20T13:05", datetime(2026, 11, 20, 13, 5, tzinfo=UTC)),
    ],
)
def test_parse_utc(text, expected):
    assert parse_utc(text) == expected


def test_hours_between_and_floor():
    hours = list(hours_between("2026-11-20T22:00Z", "2026-11-21T01:00Z"))
    assert [iso(h) for h in hours] == [
        "2026-11-20T22:00:00Z",
        "2026-11-20T23:00:00Z",
        "2026-11-21T00:00:00Z",
    ]
    assert floor_hour(parse_utc("2026-11-20T22:59:59.999Z")) == hours[0]
    with pytest.raises(ValueError, match="whole hours"):
        list(hours_between("2026-11-20T22:30Z", "2026-11-21T01:00Z"))


def test_stats_columns_become_a_table_property_and_cover_the_zorder_columns():
    from reclake.tables import TableSpec

    samples = table("training_samples")
    assert samples.properties == {
        "delta.dataSkippingStatsColumns": "user_id,item_id,event_time,event_hour"
    }
    assert table("events").properties == {}  # Delta's default: the first 32 columns
    with pytest.raises(ValueError, match="stats_columns must include zorder_by"):
        TableSpec("t", "x/t", keys=("id",), zorder_by=("user_id",), stats_columns=("id",))
