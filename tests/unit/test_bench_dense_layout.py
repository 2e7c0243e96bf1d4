"""The dense-layout benchmark compares the same features: its list column holds exactly the
separate columns' values, nulls as 0, as float32 (what the reader would emit)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.bench_dense_layout import list_batches, scan, write_layouts


def test_both_layouts_hold_the_same_features(tmp_path):
    separate, packed = write_layouts(tmp_path, rows=3000, features=6)
    columns = pq.read_table(separate)
    assert sum(c.null_count for c in columns.columns) > 0  # the null fill is exercised
    expected = np.column_stack(
        [pc.fill_null(c, 0).to_numpy().astype(np.float32) for c in columns.columns]
    )
    values = pq.read_table(packed).column("dense").combine_chunks().values.to_numpy()
    np.testing.assert_array_equal(values.reshape(-1, 6), expected)

    assert scan(separate) == scan(packed) == 3000
    assert list_batches(packed, features=6, batch=128) == 3000
