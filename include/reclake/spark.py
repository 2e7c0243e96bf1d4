"""The one SparkSession factory, used by jobs, tests and benchmarks alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from reclake.config import Settings, load_settings
from reclake.objectstore import Credentials, hadoop_properties, spark_secrets, uses_s3

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def delta_jars(jars_dir: Path) -> list[str]:
    """The Delta JAR files fetched by `make setup`; fails clearly when they are missing."""
    jars = sorted(str(p) for p in Path(jars_dir).glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"no Delta JARs in {jars_dir}: run `make setup` (or set RECLAKE_JARS_DIR)"
        )
    return jars


# Under jars/: the S3A connector, its AWS SDK modules and reclake's S3 log store.
S3A_JARS = "s3a"


def job_jars(settings: Settings) -> list[str]:
    """The JARs every job loads: Delta's, plus the S3A ones when the lake is on an object
    store (a local lake leaves them out: nothing to load, nothing to ship to executors)."""
    jars = sorted(str(p) for p in Path(settings.jars_dir).glob("*.jar"))
    if uses_s3(settings):
        s3a = sorted(str(p) for p in (Path(settings.jars_dir) / S3A_JARS).glob("*.jar"))
        if not s3a:
            raise FileNotFoundError(
                f"no S3A JARs in {Path(settings.jars_dir) / S3A_JARS}: run `make setup`"
            )
        jars += s3a
    return jars


# The JVM never JIT-compiles a method over 8000 bytecodes; whole-stage code for wide row-wise
# rules (ingest validation) exceeds that and then runs interpreted, about 2x slower overall.
BASE_JVM_OPTIONS = "-Duser.timezone=UTC -XX:-DontCompileHugeMethods"


def jvm_options(settings: Settings) -> str:
    """JVM flags of every reclake Spark process: UTC, huge-method JIT, then the settings'."""
    return f"{BASE_JVM_OPTIONS} {settings.spark_jvm_options}".strip()


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark settings reclake needs: Delta, UTC, and tables that delta-rs can always read."""
    from reclake.jvm_archive import archive_options

    driver_options = f"{jvm_options(settings)} {archive_options(settings)}".strip()
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": driver_options,
        "spark.executor.extraJavaOptions": jvm_options(settings),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        # Delta rebuilds table state with 50 tasks by default: far too many for a small log.
        "spark.databricks.delta.snapshotPartitions": str(settings.spark_shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.spark_driver_memory,
        # Snapshot manifests list plain Parquet files: no deletion vectors, no column mapping.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        # Snapshots keep old versions readable; log retention is managed by reclake's vacuum.
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Constraint propagation re-derives every filter constraint through each alias above
        # it: over the window computation's dozens of aliased sum columns that grew
        # exponentially and planning one write took minutes. What it infers (IsNotNull
        # filters) reclake's plans do not need.
        "spark.sql.constraintPropagation.enabled": "false",
    }
    if not settings.spark_codegen:
        # Interpret expressions rather than compile them (see Settings.spark_codegen).
        conf["spark.sql.codegen.wholeStage"] = "false"
        conf["spark.sql.codegen.factoryMode"] = "NO_CODEGEN"
    if settings.spark_master.startswith("local"):
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.host"] = "127.0.0.1"
    if uses_s3(settings):
        conf.update(hadoop_properties(settings))
    return conf


def get_spark(app_name: str = "reclake", settings: Settings | None = None) -> SparkSession:
    """Return a SparkSession with Delta Lake configured; reuses an active session if any.

    Under spark-submit the master and JARs given on the command line win; otherwise the
    master comes from RECLAKE_SPARK_MASTER and the JARs from the local jars/ folder.
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    # spark-submit starts the JVM first and hands Python its gateway port.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        delta_jars(settings.jars_dir)  # a clear error when setup has not run
        builder = builder.master(settings.spark_master).config(
            "spark.jars", ",".join(job_jars(settings))
        )
    conf = spark_conf(settings)
    if uses_s3(settings):
        # Set here, in the driver, so they never appear on a spark-submit command line.
        conf.update(spark_secrets(Credentials.resolve(settings)))
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
