"""Synthetic training_samples with the real schema (from reclake.features.definitions), written
straight to Delta with deltalake (no Spark) and published through the snapshot registry.

For reader tests, the benchmark and trying the example job without running the pipeline. The
label depends on a few features and on per-user / per-item effects, so a model can learn it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reclake.config import Settings
from reclake.features.definitions import DEFINITIONS, SEQUENCE_COLUMN, SEQUENCE_LEN_COLUMN

TABLE = "training_samples"
START = datetime(2024, 1, 1, tzinfo=UTC)
_SCALAR_TYPES = {
    "BIGINT": pa.int64(),
    "INT": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "STRING": pa.string(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATE": pa.date32(),
}


def _arrow_type(ddl: str) -> pa.DataType:
    array = re.fullmatch(r"ARRAY<(\w+)>", ddl)
    return pa.list_(_SCALAR_TYPES[array.group(1)]) if array else _SCALAR_TYPES[ddl]


def sample_schema() -> pa.Schema:
    """Arrow schema of gold/training_samples, derived from the feature definitions."""
    fields = []
    for name, ddl in DEFINITIONS.sample_columns():
        kind = ddl.removesuffix(" NOT NULL")
        fields.append(pa.field(name, _arrow_type(kind), nullable=kind == ddl))
    return pa.schema(fields)


def sample_batch(rows: int, *, offset: int = 0, hours: int = 96, seed: int = 0) -> pa.RecordBatch:
    """`rows` synthetic samples; event ids e<offset>.. are unique across calls with distinct
    offsets; event times spread over `hours` hours from START."""
    rng = np.random.default_rng([seed, offset])
    schema = sample_schema()
    # Skewed ids (a few heavy users and popular items), cheap to draw.
    users = (rng.random(rows) ** 3 * 50_000).astype(np.int64)
    items = (rng.random(rows) ** 4 * 20_000).astype(np.int64)
    seconds = np.sort(rng.integers(0, hours * 3600, rows))
    event_time = np.datetime64(START.replace(tzinfo=None), "us") + seconds * 1_000_000
    values: dict[str, object] = {
        "event_id": _prefixed("e", np.arange(offset, offset + rows)),
        "request_id": _prefixed("r", np.arange(offset, offset + rows) // 8),
        "user_id": users,
        "item_id": items,
        "position": rng.integers(0, 20, rows),
        "event_time": event_time,
        "event_hour": event_time.astype("datetime64[h]").astype("datetime64[us]"),
        "sample_date": event_time.astype("datetime64[D]"),
    }
    for col in DEFINITIONS.sample_feature_columns():
        if col.kind == "ratio":
            values[col.name] = _with_nulls(rng.random(rows), rng.random(rows) < 0.1)
        else:
            values[col.name] = rng.integers(0, 7 if col.kind == "count" else 6000, rows)
    # Hidden effects that make the label learnable: by item, by user, by a dense feature.
    item_effect = np.sin(items * 12.9898) * 1.5
    user_effect = np.cos(users * 78.233)
    logit = -0.5 + item_effect + user_effect + 0.3 * (values["user_plays_24h"] - 3)
    played = rng.random(rows) < 1 / (1 + np.exp(-logit))
    values.update(
        played=played,
        watch_ms=np.where(played, rng.integers(1000, 60_000, rows), 0),
        finished=played & (rng.random(rows) < 0.3),
        liked=played & (rng.random(rows) < 0.1),
        shared=played & (rng.random(rows) < 0.02),
        skipped=~played & (rng.random(rows) < 0.5),
    )
    lengths = rng.integers(0, DEFINITIONS.sequence_length + 1, rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    sequence = rng.integers(0, 20_000, int(offsets[-1]))
    values[SEQUENCE_COLUMN] = pa.ListArray.from_arrays(offsets, sequence)
    values[SEQUENCE_LEN_COLUMN] = lengths
    values["item_category"] = np.array(["music", "comedy", "news", "pets"])[items % 4]
    values["item_duration_ms"] = 5000 + (items % 97) * 1000
    values["item_age_hours"] = _with_nulls((items % 500) * 1.5, items % 50 == 0)
    values["user_country"] = np.array(["de", "fr", "us"])[users % 3]
    values["user_device"] = np.array(["ios", "android"])[users % 2]
    values["user_age_bucket"] = np.array(["18-24", "25-34", "35+"])[users % 3]
    arrays = [pa.array(values[f.name], type=f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _with_nulls(values: np.ndarray, null: np.ndarray) -> pa.Array:
    # NaN -> null through from_pandas: far faster than pa.array(..., mask=...).
    return pa.array(np.where(null, np.nan, values), from_pandas=True)


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def sample_batches(
    rows: int, *, chunk: int = 250_000, **kwargs: object
) -> Iterator[pa.RecordBatch]:
    """`rows` samples in chunks (bounded memory for large tables)."""
    for offset in range(0, rows, chunk):
        yield sample_batch(min(chunk, rows - offset), offset=offset, **kwargs)


def write_samples(
    uri: str,
    batches: Iterator[pa.RecordBatch] | pa.RecordBatch,
    *,
    row_group_rows: int = 65_536,
    mode: str = "append",
) -> int:
    """Write samples to the Delta table at `uri` (partitioned by sample_date); returns the
    version this write committed.

    One batch is retried on a commit conflict (a vacuum's property commit or an optimize
    landing during an overwrite fails it), as reclake's Spark writes are; a stream of batches
    cannot be re-read, so it is written once. The version is found by the commit's own tag
    (`userMetadata`, as `io.replace_where` tags its commits), not taken as the newest: a
    concurrent commit may already follow it.
    """
    from deltalake import CommitProperties, WriterProperties, write_deltalake

    from reclake.io import own_commit, write_tag
    from reclake.maintenance.deltalog import is_table, latest_version
    from reclake.maintenance.retry import retry_on_conflict

    tag = write_tag(None)
    before = latest_version(uri) if is_table(uri) else None
    retryable = isinstance(batches, pa.RecordBatch)

    def write() -> None:
        data = iter([batches]) if retryable else batches
        write_deltalake(
            uri,
            pa.RecordBatchReader.from_batches(sample_schema(), data),
            mode=mode,
            partition_by=["sample_date"],
            writer_properties=WriterProperties(
                max_row_group_size=row_group_rows, compression="SNAPPY"
            ),
            commit_properties=CommitProperties(custom_metadata={"userMetadata": tag}),
        )

    if retryable:
        retry_on_conflict(write)
    else:
        write()
    commit = own_commit(uri, before, tag)
    if commit is not None:
        return commit.version
    raise RuntimeError(f"the write tagged {tag} committed but is not in {uri}'s history")


def publish_version(settings: Settings, version: int) -> object:
    """Record a passing validation for this training_samples version and publish it."""
    from reclake.quality.results import ValidationResult, save_result
    from reclake.snapshots import publish

    result = ValidationResult(
        id=f"synthetic-{uuid.uuid4().hex[:8]}",
        table=TABLE,
        version=version,
        success=True,
        created_at=datetime.now(UTC).isoformat(),
    )
    save_result(settings, result)
    return publish(settings, TABLE, version, result.id)


def publish_samples(
    settings: Settings, rows: int, *, offset: int = 0, hours: int = 72, row_group_rows: int = 200
) -> object:
    """Append `rows` synthetic samples as a new training_samples version and publish it."""
    batch = sample_batch(rows, offset=offset, hours=hours)
    return publish_version(
        settings, write_samples(table_uri(settings), batch, row_group_rows=row_group_rows)
    )


def table_uri(settings: Settings) -> str:
    """Where training_samples lives in this lake."""
    from reclake.tables import table

    return table(TABLE).uri(settings)


def hours_after_start(hours: float) -> datetime:
    """START + hours, for building time filters in tests and examples."""
    return START + timedelta(hours=hours)
