"""A class-data-sharing (CDS) archive for the Spark driver JVM of the embedded setup.

A short reclake job spends a large share of its CPU loading, parsing and verifying the ~20k
classes of Spark and Delta. `make setup` runs a small Delta workload once with
`-XX:ArchiveClassesAtExit`; every later local driver maps that archive instead (about a fifth
less CPU per job). The archive belongs to one JVM build and one Spark class path: when either
changes the JVM ignores it silently and setup rebuilds it. Without the archive nothing changes
but speed.

    python -m reclake.jvm_archive build     # what setup runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reclake.config import Settings, load_settings

ARCHIVE_NAME = "spark-classes.jsa"
# Keep the JVM quiet about the archive (a stale one is simply not used).
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def archive_path(settings: Settings) -> Path:
    """Where setup keeps the archive: beside the Delta JARs it was built with."""
    return Path(settings.jars_dir) / ARCHIVE_NAME


def archive_options(settings: Settings) -> str:
    """Driver JVM flags that map the archive; empty without one or for a remote cluster."""
    path = archive_path(settings)
    if not settings.spark_master.startswith("local") or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {QUIET}"


def exercise(spark, folder: str) -> None:
    """Touch the classes a reclake job loads: JSON and variant parsing, Delta write, read,
    MERGE, partition overwrite, joins, windows and aggregates."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lines = spark.createDataFrame(
        [(f'{{"id": {i}, "k": "{i % 5}", "t": "2026-11-20T0{i % 9}:00:00Z"}}',) for i in range(50)],
        "value string",
    )
    parsed = lines.select(
        F.from_json("value", "id bigint, k string, t string").alias("j"),
        F.expr("try_variant_get(parse_json(value), '$.id', 'bigint')").alias("v"),
    ).select("j.*", "v", F.to_timestamp("j.t").alias("ts"))
    table = f"{folder}/t"
    parsed.withColumn("d", F.to_date("ts")).write.format("delta").partitionBy("d").save(table)
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, table)
    target.alias("a").merge(
        parsed.withColumn("d", F.to_date("ts")).alias("b"), "a.id = b.id"
    ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    df = spark.read.format("delta").load(table)
    ranked = df.withColumn("r", F.row_number().over(Window.partitionBy("k").orderBy("ts")))
    joined = ranked.join(df.groupBy("k").agg(F.sum("id").alias("s")), "k", "left")
    joined.where("r <= 3").write.format("delta").mode("overwrite").option(
        "replaceWhere", "d >= '2026-11-20'"
    ).save(f"{folder}/u")
    spark.read.format("delta").load(f"{folder}/u").collect()
    target.history().collect()


def build(settings: Settings) -> Path:
    """Run the workload under spark-submit and dump its classes into the archive (atomic)."""
    from reclake.spark import delta_jars, jvm_options, spark_conf

    target = archive_path(settings)
    with tempfile.TemporaryDirectory(prefix="reclake-cds-") as tmp:
        dump = Path(tmp) / ARCHIVE_NAME
        conf = spark_conf(settings)
        conf["spark.driver.extraJavaOptions"] = (
            f"{jvm_options(settings)} -XX:ArchiveClassesAtExit={dump} {QUIET}"
        )
        cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]"]
        cmd += ["--jars", ",".join(delta_jars(settings.jars_dir))]
        cmd += ["--driver-memory", settings.spark_driver_memory]
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [__file__, "exercise", tmp]
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not dump.is_file():
            raise RuntimeError(f"class archive workload failed:\n{proc.stderr[-3000:]}")
        os.replace(dump, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """`build` the archive, or (inside spark-submit) `exercise` the workload in a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the archive beside the Delta JARs")
    run = sub.add_parser("exercise", help=argparse.SUPPRESS)
    run.add_argument("folder")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "exercise":
        from reclake.spark import get_spark

        exercise(get_spark("reclake-class-archive", settings), args.folder)
        return 0
    print(f"class archive: {build(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
