"""Training-side reader (torch, pyarrow; no Spark, no JVM): published snapshots as batches."""

from reclake.reader.dataset import SnapshotDataset
from reclake.reader.loader import SnapshotLoader
from reclake.reader.sharding import Stream, WorkUnit

__all__ = ["SnapshotDataset", "SnapshotLoader", "Stream", "WorkUnit"]
