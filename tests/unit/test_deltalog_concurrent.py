"""Finding a write's own commit while other commits land beside it (delta-rs, no JVM).

delta-rs' history() numbers commits down from the version its table object loaded, so the
commits that land between the load and the call get wrong versions (deltalake 1.6.6: a
table loaded at version 0, then two commits, lists versions 0, -1, -2), and a write found
by its tag got a neighbour's version. A delta-rs overwrite also failed outright when a
property commit (vacuum raising the log retention) landed during it. The soak's synthetic
publisher hit both under load.
"""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from reclake.maintenance import deltalog
from reclake.reader import synthetic


def _append(uri: str, n: int) -> None:
    tagged = CommitProperties(custom_metadata={"write": str(n)})
    write_deltalake(uri, pa.table({"n": [n]}), mode="append", commit_properties=tagged)


def _raise_retention(uri: str, days: int) -> None:
    DeltaTable(uri).alter.set_table_properties(
        {"delta.logRetentionDuration": f"interval {days} days"}
    )


def test_find_commit_reads_the_versions_from_the_commit_files(tmp_path):
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"n": [0]}))
    loaded_before = DeltaTable(uri)
    _append(uri, 1)
    _raise_retention(uri, 31)
    _append(uri, 2)

    # What the old lookup read: delta-rs labels the newer commits from the loaded version.
    labelled = {h.get("write"): h["version"] for h in loaded_before.history()}
    assert labelled["1"] != 1

    def tagged(n: int):
        return lambda commit: commit.info.get("write") == str(n)

    assert deltalog.find_commit(uri, 0, tagged(1)).version == 1
    assert deltalog.find_commit(uri, None, tagged(2)).version == 3
    assert deltalog.find_commit(uri, 1, tagged(1)) is None  # not after version 1
    assert deltalog.find_commit(uri, 0, tagged(9)) is None
    assert [c.operation for c in deltalog.recent_commits(uri, 2)] == [
        "WRITE",
        "SET TBLPROPERTIES",
    ]
    assert [c.version for c in deltalog.recent_commits(uri, 10)] == [3, 2, 1, 0]


def test_synthetic_overwrite_retries_a_property_commit_that_lands_during_it(tmp_path, monkeypatch):
    import deltalake

    uri = str(tmp_path / "samples")
    synthetic.write_samples(uri, synthetic.sample_batch(50), row_group_rows=50)
    real_write = deltalake.write_deltalake
    attempts = []

    def write_with_a_commit_landing(table_uri, data, **kwargs):
        attempts.append(kwargs["mode"])

        def batches():
            if len(attempts) == 1:
                # After the write loaded the table, before it commits: it must conflict.
                # (Another thread: this one drives the write's async runtime.)
                other = threading.Thread(target=_raise_retention, args=(uri, 31))
                other.start()
                other.join()
            yield from data

        reader = pa.RecordBatchReader.from_batches(data.schema, batches())
        return real_write(table_uri, reader, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", write_with_a_commit_landing)
    batch = synthetic.sample_batch(50, offset=50)

    version = synthetic.write_samples(uri, batch, row_group_rows=50, mode="overwrite")

    assert attempts == ["overwrite", "overwrite"]  # the first lost to the property commit
    assert version == 2  # its own, after the property commit at 1
    held = DeltaTable(uri, version=version).to_pyarrow_table(columns=["event_id"])
    assert sorted(held.column(0).to_pylist()) == sorted(batch.column("event_id").to_pylist())

    # A stream of batches cannot be re-read: the same conflict fails it.
    attempts.clear()
    stream = iter([synthetic.sample_batch(50, offset=100)])
    with pytest.raises(Exception, match="Metadata changed"):
        synthetic.write_samples(uri, stream, row_group_rows=50, mode="overwrite")
    assert attempts == ["overwrite"]
