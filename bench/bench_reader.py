"""Benchmark of the training reader (`make bench-reader`).

Synthesizes a training_samples table with the real schema (default 5M rows), written directly
with pyarrow + deltalake (no Spark) in row groups of 128k rows, publishes it through the
snapshot registry, then measures, each phase in its own subprocess (so peak RSS is per phase):

  raw      pyarrow scan of the same projected columns (the limit: decode only, no tensors)
  reader0  SnapshotDataset -> torch tensors, DataLoader num_workers=0
  reader2  the same with num_workers=2
  naive    pandas read + map-style Dataset returning one row at a time + default collate,
           timed on a subset and extrapolated (it is far too slow for the full table)

All phases read a warm page cache (one unmeasured scan first). MB/s counts the decoded Arrow
bytes of the projected columns. Usage:
  .venv/bin/python bench/bench_reader.py [--rows 5000000] [--lake DIR] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from reclake.config import Settings
from reclake.reader import synthetic as syn

TARGET_VS_RAW = 0.8
TARGET_VS_NAIVE = 20.0
NAIVE_ROWS = 20_000


class PeakRss:
    """Peak of the summed RSS of this process and its children (DataLoader workers), sampled
    every 20 ms. ru_maxrss would not do: Linux carries it over fork + exec from the parent."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.02):
            total = 0
            for proc in [self.process, *self.process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def stop_mb(self) -> float:
        """Stop sampling; the peak in MB (shared pages of workers count once per process)."""
        self._stop.set()
        self._thread.join()
        return self.peak / 1e6


def _dataset(snapshot_id: str, settings: Settings, **kwargs):
    from reclake.reader import SnapshotDataset

    return SnapshotDataset(snapshot_id, settings=settings, batch_size=1024, **kwargs)


def phase_raw(snapshot_id: str, settings: Settings) -> dict:
    """Raw pyarrow scan of the reader's projection."""
    from reclake.snapshots import read_arrow_dataset

    columns = _dataset(snapshot_id, settings).spec.columns
    dataset = read_arrow_dataset(snapshot_id, settings, columns=columns)
    start = time.perf_counter()
    rows = nbytes = 0
    for batch in dataset.to_batches(columns=columns, batch_size=131_072):
        rows += batch.num_rows
        nbytes += batch.nbytes
    return {"rows": rows, "bytes": nbytes, "seconds": time.perf_counter() - start}


def phase_reader(snapshot_id: str, settings: Settings, workers: int) -> dict:
    """SnapshotDataset through a DataLoader into torch tensors."""
    from torch.utils.data import DataLoader

    dataset = _dataset(snapshot_id, settings)
    start = time.perf_counter()
    rows = 0
    for batch in DataLoader(dataset, batch_size=None, num_workers=workers):
        rows += batch["label"].shape[0]
    return {"rows": rows, "seconds": time.perf_counter() - start}


def phase_naive(snapshot_id: str, settings: Settings) -> dict:
    """pandas + one-row-at-a-time map-style Dataset + default collate, on a subset."""
    import numpy as np
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, Dataset

    from reclake import lakefs
    from reclake.snapshots import resolve

    spec = _dataset(snapshot_id, settings).spec
    first = resolve(settings, snapshot_id).files[0]
    start = time.perf_counter()
    frame = pd.read_parquet(lakefs.local_path(first.path), columns=spec.columns).head(NAIVE_ROWS)

    class RowDataset(Dataset):
        def __len__(self) -> int:
            return len(frame)

        def __getitem__(self, i: int) -> dict:
            row = frame.iloc[i]
            seq = list(row[spec.sequence])[: spec.seq_len]
            return {
                "dense": torch.tensor(
                    [0.0 if pd.isna(row[f]) else float(row[f]) for f in spec.features]
                ),
                "label": torch.tensor(float(row[spec.label])),
                "user_id": torch.tensor(int(row["user_id"])),
                "item_id": torch.tensor(int(row["item_id"])),
                "sequence": torch.tensor(np.pad(seq, (0, spec.seq_len - len(seq))).astype(int)),
                "sequence_len": torch.tensor(len(seq)),
            }

    rows = 0
    for batch in DataLoader(RowDataset(), batch_size=1024, num_workers=0):
        rows += batch["label"].shape[0]
    return {"rows": rows, "seconds": time.perf_counter() - start}


def run_phase(name: str, snapshot_id: str, lake: str) -> dict:
    """Run one phase in a fresh interpreter; returns its timings and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--snapshot", snapshot_id, "--lake", lake],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def build(lake: Path, rows: int) -> str:
    """Write and publish the synthetic table; returns the snapshot id."""
    settings = Settings(lake_root=lake.as_uri())
    start = time.perf_counter()
    version = syn.write_samples(
        syn.table_uri(settings), syn.sample_batches(rows, hours=96), row_group_rows=131_072
    )
    snap = syn.publish_version(settings, version)
    print(
        f"wrote {snap.row_count:,} rows in {len(snap.files)} files "
        f"({snap.size_bytes / 1e6:,.0f} MB Parquet) in {time.perf_counter() - start:.0f}s: "
        f"{snap.id}"
    )
    return snap.id


def report(results: dict[str, dict], total_rows: int) -> None:
    """Print the side-by-side table and the ratios against the targets."""
    raw = results["raw"]
    bytes_per_row = raw["bytes"] / raw["rows"]
    print(f"\n{'phase':<10}{'rows/s':>14}{'MB/s':>10}{'peak RSS MB':>13}  note")
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        note = ""
        if name == "naive":
            note = f"timed on {r['rows']:,} rows; full table extrapolated to "
            note += f"{total_rows / rate / 60:,.0f} min"
        mbs = rate * bytes_per_row / 1e6
        print(f"{name:<10}{rate:>14,.0f}{mbs:>10,.0f}{r['peak_rss_mb']:>13,.0f}  {note}")
    speed = {k: r["rows"] / r["seconds"] for k, r in results.items()}
    best = max(speed["reader0"], speed["reader2"])
    print()
    for label, value, target in [
        ("reader0 / raw scan", speed["reader0"] / speed["raw"], TARGET_VS_RAW),
        ("reader2 / raw scan", speed["reader2"] / speed["raw"], TARGET_VS_RAW),
        ("best reader / naive", best / speed["naive"], TARGET_VS_NAIVE),
    ]:
        verdict = "ok" if value >= target else "BELOW TARGET"
        print(f"{label:<22}{value:>8.2f}x   target >= {target}x   {verdict}")


def main() -> int:
    """Build the table (unless --phase), run every phase, print the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--lake", help="lake folder (default: a temp folder, removed unless --keep)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--snapshot", help="reuse a published snapshot in --lake")
    phase_names = ["raw", "reader0", "reader2", "naive"]
    p.add_argument("--phase", choices=phase_names, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.phase:
        settings = Settings(lake_root=Path(args.lake).as_uri())
        phases = {
            "raw": lambda: phase_raw(args.snapshot, settings),
            "reader0": lambda: phase_reader(args.snapshot, settings, 0),
            "reader2": lambda: phase_reader(args.snapshot, settings, 2),
            "naive": lambda: phase_naive(args.snapshot, settings),
        }
        rss = PeakRss()
        result = phases[args.phase]()
        print(json.dumps({**result, "peak_rss_mb": rss.stop_mb()}))
        return 0

    lake = Path(args.lake or tempfile.mkdtemp(prefix="reclake-bench-reader-")) / "lake"
    try:
        snapshot_id = args.snapshot or build(lake, args.rows)
        print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
        run_phase("raw", snapshot_id, str(lake))  # warm the page cache, unmeasured
        results = {n: run_phase(n, snapshot_id, str(lake)) for n in ("raw", "reader0", "reader2")}
        results["naive"] = run_phase("naive", snapshot_id, str(lake))
        report(results, results["raw"]["rows"])
    finally:
        if not args.keep and not args.lake:
            shutil.rmtree(lake.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
