"""Running a suite with Great Expectations on a Spark DataFrame, and building Data Docs.

GX state (its file data context, validation store) lives under <lake>/_reclake/gx and the
Data Docs site under <lake>/_reclake/data_docs, never in the repository. GX is slow to
import and start, so one context per lake is created per process and reused.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reclake.config import Settings
from reclake.lakefs import local_path
from reclake.quality.suites import Suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

GX_DIR = "_reclake/gx"
DATA_DOCS_DIR = "_reclake/data_docs"
SITE_NAME = "reclake"
DATASOURCE = "reclake_spark"
BATCH_DEFINITION = "whole_dataframe"

_CONTEXTS: dict[str, Any] = {}


@dataclass(frozen=True)
class GxRun:
    """What GX said: overall success, one JSON dict per expectation, and the Data Docs index."""

    success: bool
    results: list[dict[str, Any]]
    data_docs: str | None


def data_docs_index(settings: Settings) -> str:
    """Path of the Data Docs index.html for this lake."""
    return str(Path(_local_dir(settings, DATA_DOCS_DIR)) / "index.html")


def gx_context(settings: Settings) -> Any:
    """The process-wide GX file context of this lake, created on first use."""
    root = _local_dir(settings, GX_DIR)
    if root not in _CONTEXTS:
        # No usage statistics sent from pipeline runs; set before GX reads its config.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        docs_dir = _local_dir(settings, DATA_DOCS_DIR)
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": docs_dir,
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        if SITE_NAME in context.list_data_docs_sites():
            context.update_data_docs_site(SITE_NAME, site)
        else:
            context.add_data_docs_site(SITE_NAME, site)
        _CONTEXTS[root] = context
    return _CONTEXTS[root]


def run_suite(settings: Settings, suite: Suite, df: DataFrame) -> GxRun:
    """Validate `df` against the suite with a GX checkpoint that also updates Data Docs."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core import ExpectationSuite

    context = gx_context(settings)
    source = context.data_sources.add_or_update_spark(DATASOURCE)
    asset = _get_or_add(source.assets, suite.table, source.add_dataframe_asset)
    batch = _get_or_add(
        asset.batch_definitions, BATCH_DEFINITION, asset.add_batch_definition_whole_dataframe
    )
    gx_suite = context.suites.add_or_update(
        ExpectationSuite(name=suite.table, expectations=suite.expectations, meta=suite.meta)
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.table,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            result_format=suite.result_format,
        )
    )
    started = time.time()
    outcome = checkpoint.run(batch_parameters={"dataframe": df})
    results = [r.to_json_dict() for run in outcome.run_results.values() for r in run.results]
    index = data_docs_index(settings)
    if not Path(index).exists():
        return GxRun(bool(outcome.success), results, None)
    if not _local_lake(settings):
        index = _copy_docs_to_lake(settings, Path(index).parent, started)
    return GxRun(bool(outcome.success), results, index)


def _get_or_add(existing: list[Any], name: str, add: Any) -> Any:
    for item in existing:
        if item.name == name:
            return item
    return add(name)


def _local_lake(settings: Settings) -> bool:
    return settings.lake_root.startswith("file://")


def _local_dir(settings: Settings, relative: str) -> str:
    """A local folder for GX: the lake's own, or for an object-store lake a work folder on
    this machine (GX's file context and docs site need a plain path); the Data Docs pages a
    run writes there are then copied into the lake."""
    if _local_lake(settings):
        path = local_path(settings.table_uri(relative))
    else:
        key = hashlib.sha256(settings.lake_root.encode()).hexdigest()[:12]
        path = str(Path(tempfile.gettempdir()) / f"reclake-gx-{key}" / relative)
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def _copy_docs_to_lake(settings: Settings, site: Path, since: float) -> str:
    """Copy the Data Docs files this run wrote (or rewrote) into <lake>/_reclake/data_docs;
    returns the index's URI there."""
    from reclake import lakefs

    target = settings.table_uri(DATA_DOCS_DIR)
    for file in site.rglob("*"):
        if file.is_file() and file.stat().st_mtime >= since - 1:
            lakefs.write_bytes(f"{target}/{file.relative_to(site).as_posix()}", file.read_bytes())
    return f"{target}/index.html"
