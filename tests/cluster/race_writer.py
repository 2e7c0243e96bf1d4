"""One writer of the concurrent-commit test (tests/cluster/test_cluster.py), as its own process:

    python tests/cluster/race_writer.py spark|delta-rs TABLE_URI NAME ROUNDS START PERIOD

Round r appends one row (NAME, r) to the table at wall-clock time START + r * PERIOD, the
instant every other writer appends too, through the engine's ordinary path with the settings
from the environment (RECLAKE_S3_*): Spark with reclake's session (its s3a log store) or
delta-rs with reclake's storage options and the registry's retry. Prints one JSON line with
the rounds whose commit the engine reported done.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _at(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


def spark_writer(uri: str, name: str, rounds: int, start: float, period: float) -> list[int]:
    """Append through Spark (reclake's session: the S3 conditional-write log store)."""
    import reclake.spark
    from reclake.spark import get_spark

    control = os.environ.get("RACE_SPARK_LOG_STORE")
    if control:
        # A control run (docs/deploy.md) with another log store, e.g. Delta's own
        # S3SingleDriverLogStore: it must be in the conf the SparkContext starts with.
        reclake_conf = reclake.spark.spark_conf
        reclake.spark.spark_conf = lambda settings: {
            **reclake_conf(settings),
            "spark.delta.logStore.s3a.impl": control,
        }
    spark = get_spark(f"race-{name}")
    done = []
    try:
        for r in range(rounds):
            df = spark.createDataFrame([(name, r)], "writer string, round int")
            _at(start + r * period)
            df.write.format("delta").mode("append").save(uri)
            done.append(r)
    finally:
        spark.stop()
    return done


def log_store_writer(uri: str, name: str, rounds: int, start: float, period: float) -> list[int]:
    """Create commit file r of a fresh log directly through the configured s3a log store, at
    the same instant as the other writers: exactly one may succeed per round."""
    from reclake.spark import get_spark

    spark = get_spark(f"race-{name}")
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    store_class = os.environ.get("RACE_SPARK_LOG_STORE") or spark.conf.get(
        "spark.delta.logStore.s3a.impl"
    )
    # Loaded by Spark's class loader (the JAR came with spark.jars), not py4j's default one.
    cls = jvm.org.apache.spark.util.Utils.classForName(store_class, True, False)
    ctor_types = spark.sparkContext._gateway.new_array(jvm.java.lang.Class, 1)
    ctor_types[0] = conf.getClass()
    args = spark.sparkContext._gateway.new_array(jvm.java.lang.Object, 1)
    args[0] = conf
    store = cls.getConstructor(ctor_types).newInstance(args)
    won = []
    try:
        for r in range(rounds):
            path = jvm.org.apache.hadoop.fs.Path(f"{uri}/_delta_log/{r:020d}.json")
            lines = jvm.java.util.ArrayList()
            lines.add(json.dumps({"writer": name, "round": r}))
            _at(start + r * period)
            try:
                store.write(path, lines.iterator(), False, conf)
                won.append(r)
            except Exception as exc:  # py4j wraps the JVM's exception
                if "FileAlreadyExistsException" not in str(exc):
                    raise
    finally:
        spark.stop()
    return won


def delta_rs_writer(uri: str, name: str, rounds: int, start: float, period: float) -> list[int]:
    """Append through delta-rs (the registry's engine) with reclake's storage options."""
    import pyarrow as pa
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    from reclake.snapshots.deltars import rs_uri, storage_options

    done = []
    for r in range(rounds):
        batch = pa.table({"writer": [name], "round": pa.array([r], pa.int32())})
        _at(start + r * period)
        for attempt in range(20):
            try:
                write_deltalake(
                    rs_uri(uri), batch, mode="append", storage_options=storage_options(uri)
                )
                done.append(r)
                break
            except CommitFailedError:
                # delta-rs gives up after its own retries when many writers race; the registry
                # (snapshots.store.append) retries with a back-off the same way.
                time.sleep(0.05 * (attempt + 1))
    return done


def main(argv: list[str]) -> int:
    """Run one writer; print {"writer", "engine", "done"}."""
    engine, uri, name, rounds, start, period = argv
    writer = {"spark": spark_writer, "delta-rs": delta_rs_writer, "log-store": log_store_writer}[
        engine
    ]
    done = writer(uri, name, int(rounds), float(start), float(period))
    print(json.dumps({"writer": name, "engine": engine, "done": done}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
