"""Train a small CTR model on a published snapshot and evaluate it on a later time range.

    python examples/train_ctr.py --snapshot training_samples@latest --steps 200 --seed 0 \
        [--eval-start 2024-01-04T00:00:00Z] [--eval-end ...] [--batch-size 512] [--no-cache]

Trains on rows with event_time < eval-start (default: 80% of the snapshot's time span) and
reports AUC and log loss on rows in [eval-start, eval-end). The time split is a filter pushed
down to Parquet, so neither side reads the other's row groups. The training set goes through
the reader's snapshot cache (RECLAKE_READER_CACHE_DIR, or --cache-dir): the first epoch
writes it, later epochs (and later runs) read the memory maps; the time of each epoch is
printed to stderr and recorded. Metrics are printed and written to
<lake>/_reclake/training_runs/<snapshot id>-<seed>.json. Same snapshot + seed -> same metrics,
cached or not (seeded reader, torch.manual_seed, deterministic algorithms, fixed threads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclake import lakefs
from reclake.config import load_settings
from reclake.reader import SnapshotDataset
from reclake.reader.manifest import load_snapshot
from reclake.snapshots import read_arrow_dataset
from reclake.timeutil import iso, parse_utc
from reclake.training.metrics import log_loss, roc_auc
from reclake.training.model import CTRModel

RUNS_DIR = "_reclake/training_runs"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the example job."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--snapshot", default="training_samples@latest")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eval-start", help="UTC time; default: 80%% into the snapshot's time span")
    p.add_argument("--eval-end", help="UTC time; default: end of the snapshot")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (fixed for repeatability)")
    p.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read epochs after the first from the snapshot cache (default: on)",
    )
    p.add_argument("--cache-dir", help="cache folder (default: RECLAKE_READER_CACHE_DIR)")
    return p.parse_args(argv)


def default_split(snapshot: Any) -> datetime:
    """80% of the way through the snapshot's event_time range."""
    times = read_arrow_dataset(snapshot, columns=["event_time"]).to_table().column("event_time")
    bounds = pc.min_max(times)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low + (high - low) * 0.8


def _time(value: datetime) -> pa.Scalar:
    return pa.scalar(parse_utc(value), pa.timestamp("us", tz="UTC"))


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate; returns the run record (metrics, snapshot id, split, timings)."""
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    settings = load_settings()
    snapshot = load_snapshot(args.snapshot, settings)
    split = parse_utc(args.eval_start) if args.eval_start else default_split(snapshot)
    eval_filter = pc.field("event_time") >= _time(split)
    if args.eval_end:
        eval_filter = eval_filter & (pc.field("event_time") < _time(parse_utc(args.eval_end)))
    common = {"batch_size": args.batch_size, "seed": args.seed}
    train_filter = pc.field("event_time") < _time(split)
    # Full batches only in training: every step has the same size (and weight). Training
    # reads its rows once per epoch: the cache turns every epoch after the first into reads of
    # memory maps. Evaluation reads its rows once, so a cache would only cost it writes.
    cache = {"cache": args.cache, "cache_dir": args.cache_dir} if args.cache else {"cache": False}
    train_set = SnapshotDataset(
        snapshot, settings=settings, filter=train_filter, drop_last=True, **common, **cache
    )
    eval_set = SnapshotDataset(
        snapshot, settings=settings, filter=eval_filter, shuffle=False, cache=False, **common
    )

    model = CTRModel(len(train_set.feature_names))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loader = torch.utils.data.DataLoader(train_set, batch_size=None, num_workers=args.num_workers)
    losses: list[float] = []
    epochs: list[dict[str, Any]] = []
    rows_seen, epoch, started = 0, 0, time.perf_counter()
    while len(losses) < args.steps:
        train_set.set_epoch(epoch)
        before, epoch_rows, epoch_started = len(losses), 0, time.perf_counter()
        source = _source(train_set)
        for batch in loader:
            loss = loss_fn(model(batch), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            epoch_rows += len(batch["label"])
            if len(losses) == args.steps:
                break
        if len(losses) == before:
            raise SystemExit(f"no training rows before {iso(split)} in {snapshot.id}")
        epochs.append(_epoch_record(epoch, len(losses) - before, epoch_rows, epoch_started, source))
        rows_seen += epoch_rows
        epoch += 1
    train_seconds = time.perf_counter() - started

    model.eval()
    labels, scores = [], []
    with torch.no_grad():
        for batch in eval_set:
            scores.append(torch.sigmoid(model(batch)).numpy())
            labels.append(batch["label"].numpy())
    y = np.concatenate(labels) if labels else np.zeros(0)
    p = np.concatenate(scores) if scores else np.zeros(0)
    return {
        "snapshot_id": snapshot.id,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "eval_start": iso(split),
        "eval_end": args.eval_end,
        "metrics": {
            "train_loss_last_20": float(np.mean(losses[-20:])),
            "train_rows_seen": rows_seen,
            "train_epochs_started": epoch,
            "eval_rows": int(y.size),
            "eval_positive_rate": float(y.mean()) if y.size else None,
            "eval_auc": roc_auc(y, p) if y.size else None,
            "eval_log_loss": log_loss(y, p) if y.size else None,
        },
        "timing": {
            "train_seconds": round(train_seconds, 3),
            "epochs": epochs,
            "finished_at": iso(datetime.now(UTC)),
        },
    }


def _source(dataset: SnapshotDataset) -> str:
    """Where an epoch about to start reads from (decided before DataLoader workers start)."""
    if dataset.cache is None:
        return "parquet"
    return "cache" if dataset.is_cached() else "parquet, building the cache"


def _epoch_record(epoch: int, steps: int, rows: int, started: float, source: str) -> dict:
    """One epoch's time (training steps included), printed to stderr as it ends."""
    seconds = time.perf_counter() - started
    record = {
        "epoch": epoch,
        "steps": steps,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "source": source,
    }
    print(
        f"epoch {epoch}: {steps} steps, {rows:,} rows in {seconds:.2f} s "
        f"({record['rows_per_second']:,} rows/s) from {source}",
        file=sys.stderr,
    )
    return record


def main(argv: list[str] | None = None) -> int:
    """Run the job, print and record its metrics; returns the exit code."""
    args = parse_args(argv)
    record = train(args)
    uri = load_settings().table_uri(f"{RUNS_DIR}/{record['snapshot_id']}-{args.seed}.json")
    lakefs.write_json(uri, record)
    print(json.dumps({**record["metrics"], "snapshot_id": record["snapshot_id"], "run": uri}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
