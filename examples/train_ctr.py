"""Train a small CTR model on a published snapshot and evaluate it on a later time range.

    python examples/train_ctr.py --snapshot training_samples@latest --steps 200 --seed 0 \
        [--eval-start 2024-01-04T00:00:00Z] [--eval-end ...] [--batch-size 512]

Trains on rows with event_time < eval-start (default: 80% of the snapshot's time span) and
reports AUC and log loss on rows in [eval-start, eval-end). The time split is a filter pushed
down to Parquet, so neither side reads the other's row groups. Metrics are printed and
written to <lake>/_reclake/training_runs/<snapshot id>-<seed>.json. Same snapshot + seed ->
same metrics (seeded reader, torch.manual_seed, deterministic algorithms, fixed threads).
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
    # Full batches only in training: every step has the same size (and weight).
    train_set = SnapshotDataset(snapshot, filter=train_filter, drop_last=True, **common)
    eval_set = SnapshotDataset(snapshot, filter=eval_filter, shuffle=False, **common)

    model = CTRModel(len(train_set.feature_names))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loader = torch.utils.data.DataLoader(train_set, batch_size=None, num_workers=args.num_workers)
    losses: list[float] = []
    rows_seen, epoch, started = 0, 0, time.perf_counter()
    while len(losses) < args.steps:
        train_set.set_epoch(epoch)
        before = len(losses)
        for batch in loader:
            loss = loss_fn(model(batch), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            rows_seen += len(batch["label"])
            if len(losses) == args.steps:
                break
        if len(losses) == before:
            raise SystemExit(f"no training rows before {iso(split)} in {snapshot.id}")
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
        "timing": {"train_seconds": round(train_seconds, 3), "finished_at": iso(datetime.now(UTC))},
    }


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
