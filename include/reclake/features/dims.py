"""User and item dimensions: validate the landing dimension drops, keep the latest record per
key, and replace dims/users and dims/items with the result (bad lines go to quarantine/dims)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from reclake import contract, io, lakefs
from reclake.config import Settings
from reclake.tables import ITEMS_DDL, QUARANTINE_DIMS_DDL, USERS_DDL, table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DROP_SUFFIXES = (".jsonl", ".jsonl.gz")
DROPS = {"users": contract.USERS_DROP, "items": contract.ITEMS_DROP}
# What the last successful load read (drop files) and wrote (table versions).
LOADED_MARKER = "_reclake/dims_loaded.json"
LOADED_TABLES = ("users", "items", "quarantine_dims")
SEP = "\t"  # joins reason and detail inside a check result; never in either


class DimsError(RuntimeError):
    """A dimension drop cannot be loaded (missing, or without a single valid record)."""


@dataclass(frozen=True)
class DimSpec:
    """How one dimension drop maps to its table: fields, key, version column, value rules."""

    name: str  # table name in reclake.tables, also the `dim` value in quarantine/dims
    drop: str  # folder relative to the landing root
    fields: tuple[contract.FieldSpec, ...]
    ddl: str
    key: str
    version_column: str  # the record with the latest value wins
    # field -> (check on the typed value, what a valid value is)
    rules: dict[str, tuple[Callable[[Column], Column], str]]


def _dims() -> dict[str, DimSpec]:
    from pyspark.sql import functions as F

    def positive(c: Column) -> Column:
        return c >= 1

    return {
        "users": DimSpec(
            "users",
            DROPS["users"],
            contract.USER_FIELDS,
            USERS_DDL,
            key="user_id",
            version_column="signup_time",
            rules={
                "user_id": (positive, ">= 1"),
                "country": (lambda c: c.rlike("^[A-Z]{2}$"), "two upper-case letters"),
                "device": (
                    lambda c: c.isin(*contract.DEVICES),
                    "one of " + "|".join(contract.DEVICES),
                ),
                "age_bucket": (
                    lambda c: c.isin(*contract.AGE_BUCKETS),
                    "one of " + "|".join(contract.AGE_BUCKETS),
                ),
            },
        ),
        "items": DimSpec(
            "items",
            DROPS["items"],
            contract.ITEM_FIELDS,
            ITEMS_DDL,
            key="item_id",
            version_column="created_at",
            rules={
                "item_id": (positive, ">= 1"),
                "category": (lambda c: F.length(F.trim(c)) > 0, "not empty"),
                "duration_ms": (lambda c: c > 0, "> 0"),
                "creator_id": (positive, ">= 1"),
            },
        ),
    }


def dim_spec(name: str) -> DimSpec:
    """The dimension called `name` (users or items)."""
    return _dims()[name]


def drop_fingerprint(settings: Settings) -> dict[str, list[list]]:
    """Every file of both dimension drops as [name, size, mtime in ns]."""
    return {
        name: [
            [info.base_name, info.size, info.mtime_ns]
            for info in lakefs.list_file_infos(f"{settings.landing_uri}/{drop}")
            if info.base_name.endswith(DROP_SUFFIXES)
        ]
        for name, drop in DROPS.items()
    }


def _table_versions(settings: Settings) -> dict[str, int | None]:
    from reclake.snapshots.deltars import open_table

    versions: dict[str, int | None] = {}
    for name in LOADED_TABLES:
        try:
            versions[name] = open_table(table(name).uri(settings)).version()
        except Exception:  # not created yet (delta-rs raises its own TableNotFoundError)
            versions[name] = None
    return versions


def dims_up_to_date(settings: Settings) -> dict | None:
    """The last load's record when the drops and the tables are exactly as it left them
    (same files, sizes and mtimes; same table versions), so a reload would change nothing.
    Needs no Spark: the job checks it before starting a session."""
    marker = settings.table_uri(LOADED_MARKER)
    if not lakefs.exists(marker):
        return None
    last = lakefs.read_json(marker)
    same_drops = last.get("drops") == drop_fingerprint(settings)
    if same_drops and last.get("versions") == _table_versions(settings):
        return last
    return None


def _record_load(
    settings: Settings,
    drops: dict,
    results: dict[str, io.WriteResult],
    superseded: dict[str, dict[str, int]],
) -> None:
    marker = settings.table_uri(LOADED_MARKER)
    versions = {name: results[name].version for name in LOADED_TABLES}
    lakefs.write_json(marker, {"drops": drops, "versions": versions, "superseded": superseded})


def drop_files(settings: Settings, dim: DimSpec) -> list[str]:
    """URIs of the dimension drop's JSON-lines files; fails when there are none."""
    folder = f"{settings.landing_uri}/{dim.drop}"
    files = [u for u in lakefs.list_files(folder) if u.endswith(DROP_SUFFIXES)]
    if not files:
        raise DimsError(f"no {dim.name} drop: no *.jsonl(.gz) files under {folder}")
    return files


def read_drop_lines(spark: SparkSession, settings: Settings, dim: DimSpec) -> DataFrame:
    """Every line of the drop as (source_file, line_number, raw_line); line numbers from 1."""
    from pyspark.sql import functions as F

    # Whole files, so each line keeps its exact line number (a dim file must fit one task).
    files = spark.read.text(drop_files(settings, dim), wholetext=True)
    name = F.element_at(F.split(F.col("_metadata.file_path"), "/"), -1)
    body = F.regexp_replace(F.col("value"), r"\r?\n$", "")
    lines = F.when(F.col("value") == "", F.array()).otherwise(F.split(body, r"\r?\n"))
    return files.select(
        F.concat(F.lit(dim.drop + "/"), name).alias("source_file"),
        F.posexplode(lines).alias("pos", "raw_line"),
    ).select("source_file", (F.col("pos") + 1).cast("bigint").alias("line_number"), "raw_line")


def parse_dim_lines(lines: DataFrame, dim: DimSpec) -> DataFrame:
    """Parse and check each line: typed fields plus `reason`/`detail` (null when valid).

    reason is the first failure in field order (malformed_json, missing_field, bad_type,
    bad_value); detail lists every failing field.
    """
    from pyspark.sql import functions as F

    names = [f.name for f in dim.fields]
    target = {f.name: f.dataType.simpleString() for f in _schema(lines, dim.ddl).fields}
    as_text = ", ".join(f"{n} STRING" for n in names)
    typed = ", ".join(
        f"{f.name} {'BIGINT' if f.json_type == 'integer' else 'STRING'}" for f in dim.fields
    )
    parsed = lines.select(
        "source_file",
        "line_number",
        "raw_line",
        F.from_json("raw_line", as_text).alias("_s"),
        F.from_json("raw_line", typed).alias("_t"),
    )
    # Step 1: the raw text (null = missing) and the typed value (null = wrong type) per field.
    values = []
    for f in dim.fields:
        if f.json_type == "integer":
            value = F.col(f"_t.{f.name}")
        elif target[f.name] == "timestamp":
            value = F.expr(f"try_cast(_s.{f.name} AS TIMESTAMP)")
        else:
            value = F.col(f"_s.{f.name}")
        values += [F.col(f"_s.{f.name}").alias(f"_raw_{f.name}"), value.alias(f.name)]
    checked = parsed.select("source_file", "line_number", "raw_line", *values)
    # Step 2: one "reason<SEP>detail" string per failing field (first failing check of the field).
    failures = []
    for f in dim.fields:
        raw, value = F.col(f"_raw_{f.name}"), F.col(f.name)
        failure = F.when(raw.isNull(), F.lit(f"missing_field{SEP}{f.name}: missing"))
        if f.json_type == "integer" or target[f.name] == "timestamp":
            wanted = "an integer" if f.json_type == "integer" else "an ISO-8601 time"
            failure = failure.when(value.isNull(), F.lit(f"bad_type{SEP}{f.name}: not {wanted}"))
        if f.name in dim.rules:
            rule, rule_text = dim.rules[f.name]
            failure = failure.when(
                ~rule(value), F.lit(f"bad_value{SEP}{f.name}: must be {rule_text}")
            )
        failures.append(failure)
    no_known_field = F.coalesce(*[F.col(f"_raw_{n}") for n in names]).isNull()
    found = checked.select(
        "*",
        no_known_field.alias("_malformed"),
        F.filter(F.array(*failures), lambda x: x.isNotNull()).alias("_failures"),
    )
    reason = F.when(F.col("_malformed"), F.lit("malformed_json")).when(
        F.size("_failures") > 0, F.substring_index(F.col("_failures")[0], SEP, 1)
    )
    detail = F.when(
        F.col("_malformed"), F.lit("not a JSON object with any field of the contract")
    ).when(
        F.size("_failures") > 0,
        F.array_join(F.transform("_failures", lambda x: F.substring_index(x, SEP, -1)), "; "),
    )
    return found.select(
        "source_file",
        "line_number",
        "raw_line",
        *names,
        reason.alias("reason"),
        detail.alias("detail"),
    )


def latest_per_key(valid: DataFrame, dim: DimSpec) -> DataFrame:
    """One row per key: the latest version column wins; ties go to the later file, then line."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(dim.key).orderBy(
        F.col(dim.version_column).desc(), F.col("source_file").desc(), F.col("line_number").desc()
    )
    return valid.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def superseded_counts(valid: DataFrame, dim: DimSpec) -> DataFrame:
    """One row (lazy): `dim`, how many valid records lost to another record of their key
    (`superseded`: lines read = rows kept + superseded + quarantined), and how many keys had
    records that disagree on a value (`conflicting_keys`; a repeated identical record
    supersedes without conflicting)."""
    from pyspark.sql import functions as F

    values = [f.name for f in dim.fields if f.name != dim.key]
    per_key = valid.groupBy(dim.key).agg(
        F.count(F.lit(1)).alias("records"), F.countDistinct(F.struct(*values)).alias("versions")
    )
    return per_key.agg(
        F.lit(dim.name).alias("dim"),
        F.coalesce(F.sum(F.col("records") - 1), F.lit(0)).alias("superseded"),
        F.count(F.when(F.col("versions") > 1, True)).alias("conflicting_keys"),
    )


def load_summary(settings: Settings) -> dict:
    """What the last load recorded: drop files, table versions, superseded counts per dim."""
    return lakefs.read_json(settings.table_uri(LOADED_MARKER))


def quarantine_rows(parsed: DataFrame, dim: DimSpec) -> DataFrame:
    """The failed lines in quarantine/dims shape."""
    from pyspark.sql import functions as F

    return parsed.where(F.col("reason").isNotNull()).select(
        F.lit(dim.name).alias("dim"), "source_file", "line_number", "raw_line", "reason", "detail"
    )


def load_dims(spark: SparkSession, settings: Settings) -> dict[str, io.WriteResult]:
    """Replace dims/users, dims/items and quarantine/dims from the complete current drops."""
    from pyspark.sql import functions as F

    dims = _dims()
    # Taken before reading: a file that changes during the load makes the next run reload.
    drops = drop_fingerprint(settings)
    parsed = {n: parse_dim_lines(read_drop_lines(spark, settings, d), d) for n, d in dims.items()}
    quarantine = None
    for name, dim in dims.items():
        rows = quarantine_rows(parsed[name], dim)
        quarantine = rows if quarantine is None else quarantine.unionByName(rows)
    q_spec = table("quarantine_dims")
    io.ensure_table(spark, q_spec, QUARANTINE_DIMS_DDL, settings)
    # Quarantine first, so a drop without one valid record still shows why.
    dim_list = ", ".join(f"'{n}'" for n in dims)
    results = {
        "quarantine_dims": io.replace_where(quarantine, q_spec, settings, f"dim IN ({dim_list})")
    }
    counts = []
    for name, dim in dims.items():
        valid = parsed[name].where(F.col("reason").isNull())
        counts.append(superseded_counts(valid, dim))
        latest = _conform(latest_per_key(valid, dim), dim.ddl)
        # An all-bad drop must not wipe a good table.
        if latest.limit(1).count() == 0:
            raise DimsError(f"{name} drop has no valid record; kept the table, see quarantine/dims")
        spec = table(name)
        io.ensure_table(spark, spec, dim.ddl, settings)
        results[name] = io.replace_where(latest, spec, settings, "true")
    # Every dimension's counts in one Spark job.
    rows = reduce(lambda a, b: a.unionByName(b), counts).collect()
    superseded = {
        r["dim"]: {
            "superseded": int(r["superseded"]),
            "conflicting_keys": int(r["conflicting_keys"]),
        }
        for r in rows
    }
    _record_load(settings, drops, results, superseded)
    return results


def _schema(df: DataFrame, ddl: str):
    return io.schema_from_ddl(df.sparkSession, ddl)


def _conform(df: DataFrame, ddl: str) -> DataFrame:
    """Select and cast the table's columns in declared order."""
    from pyspark.sql import functions as F

    return df.select(
        *[F.col(f.name).cast(f.dataType).alias(f.name) for f in _schema(df, ddl).fields]
    )
