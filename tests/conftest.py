"""Shared fixtures: one local SparkSession with Delta for the whole test run."""

from __future__ import annotations

import os

import pytest

from reclake.config import Settings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings whose lake lives under this test's own tmp folder."""
    return Settings(
        lake_root=(tmp_path / "lake").as_uri(),
        spark_master="local[2]",
        spark_shuffle_partitions=2,
        reader_cache_dir=tmp_path / "reader-cache",
    )


@pytest.fixture(scope="session")
def spark():
    """A session-wide local SparkSession with Delta configured (small shuffles, UI off, UTC)."""
    from reclake.spark import get_spark

    session = get_spark(
        "reclake-tests",
        Settings(spark_master="local[2]", spark_shuffle_partitions=2, spark_driver_memory="2g"),
    )
    yield session
    session.stop()


def pytest_collection_modifyitems(items):
    """Airflow end-to-end tests first, then the cluster's (stable otherwise): under `make
    test`'s workers the longest files then start at once instead of after the Spark files."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("e2e") is None,
            item.get_closest_marker("cluster") is None,
        )
    )
