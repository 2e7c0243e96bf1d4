"""Lake file access: local lakes are read through memory maps, object stores by their URI."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from reclake import lakefs


def test_local_lake_files_are_read_through_memory_maps(tmp_path):
    target = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), target)
    filesystem, path = lakefs.resolve(target.as_uri())
    assert filesystem == pafs.LocalFileSystem(use_mmap=True)
    assert filesystem != pafs.LocalFileSystem()
    assert path == str(target)
    assert pq.read_table(path, filesystem=filesystem).column("x").to_pylist() == [1, 2, 3]


def test_s3a_is_read_as_s3_on_the_configured_store(monkeypatch):
    monkeypatch.setenv("RECLAKE_S3_ENDPOINT", "http://127.0.0.1:9400")
    monkeypatch.setenv("RECLAKE_S3_REGION", "eu-west-3")
    monkeypatch.setenv("RECLAKE_S3_PATH_STYLE", "true")
    filesystem, path = lakefs.resolve("s3a://bucket/lake/table")
    assert isinstance(filesystem, pafs.S3FileSystem)
    assert path == "bucket/lake/table"
    assert filesystem.region == "eu-west-3"
    assert lakefs.resolve("s3://bucket/lake/t2") == (filesystem, "bucket/lake/t2")
