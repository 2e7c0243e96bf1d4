"""Benchmark of a storage choice the reader's 0.8x target depends on: the dense features as
separate columns (the training_samples layout) or as one fixed-size-list float32 column.

pyarrow only, no table format. Writes the same random features both ways (half int64, half
double, 5 % nulls; the list column has nulls as 0, as the reader emits them), then, in this
process, interleaved --repeat times:

  raw_columns   threaded dataset scan of the separate columns (decode only)
  raw_list      the same scan of the one list column
  list_batches  the list column decoded, viewed as a row-major float32 [rows, F] matrix (no
                copy), and gathered in shuffled batches of --batch rows: what a reader over
                this layout would do, against the separate columns' cast, null fill and
                transpose (see docs/training.md)

It prints rows/s and CPU-seconds per million rows (best run of each) and
list_batches / raw_columns. Usage:
  .venv/bin/python bench/bench_dense_layout.py [--rows 2000000] [--features 81] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROW_GROUP = 131_072  # as the reader benchmark's snapshot


def write_layouts(folder: Path, rows: int, features: int, seed: int = 0) -> tuple[str, str]:
    """The same features as separate columns and as one list column; returns both paths."""
    rng = np.random.default_rng(seed)
    values = rng.random((rows, features))
    # Counts (odd columns) are integers in the real table, ratios and watch times doubles.
    values[:, 1::2] = np.floor(values[:, 1::2] * 100)
    nulls = rng.random((rows, features)) < 0.05
    columns = {
        f"f{j}": pa.array(
            values[:, j].astype(np.int64) if j % 2 else values[:, j], mask=nulls[:, j]
        )
        for j in range(features)
    }
    separate = str(folder / "columns.parquet")
    pq.write_table(pa.table(columns), separate, row_group_size=ROW_GROUP)
    flat = pa.array(np.where(nulls, 0.0, values).astype(np.float32).ravel())
    packed = str(folder / "list.parquet")
    column = pa.FixedSizeListArray.from_arrays(flat, features)
    pq.write_table(pa.table({"dense": column}), packed, row_group_size=ROW_GROUP)
    return separate, packed


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(fn) -> tuple[float, float]:
    """(rows/s, CPU-s per million rows) of fn, which returns the rows it read."""
    wall, cpu = time.perf_counter(), _cpu()
    rows = fn()
    return rows / (time.perf_counter() - wall), (_cpu() - cpu) / rows * 1e6


def scan(path: str) -> int:
    """Decode every row group, keep nothing: the limit of any reader of this layout."""
    return sum(batch.num_rows for batch in ds.dataset(path).to_batches())


def list_batches(path: str, features: int, batch: int, seed: int = 0) -> int:
    """Decode the list column and gather shuffled [batch, features] float32 batches."""
    rng = np.random.default_rng(seed)
    out = np.empty((batch, features), dtype=np.float32)
    rows = 0
    for record_batch in ds.dataset(path).to_batches(batch_size=ROW_GROUP):
        values = record_batch.column(0).values.to_numpy(zero_copy_only=True)
        matrix = values.reshape(-1, features)
        order = rng.permutation(len(matrix))
        for start in range(0, len(matrix), batch):
            idx = order[start : start + batch]
            np.take(matrix, idx, axis=0, out=out[: len(idx)])
        rows += len(matrix)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints one JSON line of figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=81)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reclake-bench-dense-") as tmp:
        separate, packed = write_layouts(Path(tmp), args.rows, args.features)
        phases = {
            "raw_columns": lambda: scan(separate),
            "raw_list": lambda: scan(packed),
            "list_batches": lambda: list_batches(packed, args.features, args.batch),
        }
        for fn in phases.values():
            fn()  # warm the page cache
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            for name, fn in phases.items():
                rate, cpu = measure(fn)
                print(f"  {name:13s} {rate:12,.0f} rows/s {cpu:6.2f} cpu s/M rows", flush=True)
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cpu)
        sizes = {"columns_mb": Path(separate).stat().st_size >> 20}
        sizes["list_mb"] = Path(packed).stat().st_size >> 20
    figures = {f"{k}_rows_per_s": round(v[0]) for k, v in best.items()}
    figures |= {f"{k}_cpu_s_per_m": round(v[1], 2) for k, v in best.items()}
    figures["list_batches_over_raw_columns"] = round(
        best["list_batches"][0] / best["raw_columns"][0], 2
    )
    figures["list_batches_over_raw_list"] = round(best["list_batches"][0] / best["raw_list"][0], 2)
    print(json.dumps(figures | sizes | {"rows": args.rows, "features": args.features}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
