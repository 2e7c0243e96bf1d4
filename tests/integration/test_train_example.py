"""The example training job trains on a real published snapshot and is reproducible."""

from __future__ import annotations

import json

import pytest

from examples import train_ctr
from reclake import lakefs
from reclake.reader import synthetic as syn

pytestmark = pytest.mark.integration


def test_example_trains_records_metrics_and_is_reproducible(
    settings, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", settings.lake_root)
    monkeypatch.setenv("RECLAKE_READER_CACHE_DIR", str(tmp_path / "cache"))
    batch = syn.sample_batch(6000, hours=96)
    snap = syn.publish_version(
        settings, syn.write_samples(syn.table_uri(settings), batch, row_group_rows=1024)
    )
    argv = ["--snapshot", "training_samples@latest", "--steps", "120", "--batch-size", "128"]
    argv += ["--eval-start", "2024-01-04T00:00:00Z"]

    runs, sources = [], []
    # The first run builds the snapshot cache in its first epoch, the second reads it from its
    # first epoch on, the third reads Parquet only: the same batches, so the same metrics.
    for seed, cache in (("3", "--cache"), ("3", "--cache"), ("3", "--no-cache")):
        assert train_ctr.main([*argv, "--seed", seed, cache]) == 0
        printed = json.loads(capsys.readouterr().out)
        recorded = lakefs.read_json(printed["run"])
        assert recorded["snapshot_id"] == snap.id and printed["run"].endswith(f"-{seed}.json")
        runs.append(recorded["metrics"])
        epochs = recorded["timing"]["epochs"]
        assert [e["epoch"] for e in epochs] == list(range(len(epochs))) and len(epochs) > 1
        assert sum(e["steps"] for e in epochs) == 120 and all(e["seconds"] > 0 for e in epochs)
        sources.append([e["source"] for e in epochs])

    first, again, uncached = runs
    assert first == again == uncached  # same snapshot + seed -> same metrics, bit for bit
    later = len(sources[0]) - 1
    assert sources[0] == ["parquet, building the cache"] + ["cache"] * later
    assert sources[1] == ["cache"] * (later + 1) and set(sources[2]) == {"parquet"}
    day_four = sum(t.day == 4 for t in batch.column("event_time").to_pylist())
    assert first["eval_rows"] == day_four  # the time split is exact
    assert first["train_rows_seen"] == 120 * 128
    assert 0.55 < first["eval_auc"] <= 1.0  # learned something from the training range
