"""SnapshotLoader: a DataLoader over a SnapshotDataset that keeps an exact, resumable position
when batches come from worker processes (whose own counters the main process cannot see), and
moves `bundle` batches per worker transfer (one shared-memory buffer) to cut the per-batch
inter-process cost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from reclake.reader.batches import BUNDLE, split
from reclake.reader.dataset import SnapshotDataset


class SnapshotLoader:
    """Iterate a SnapshotDataset through DataLoader workers; state_dict() resumes exactly."""

    def __init__(
        self, dataset: SnapshotDataset, num_workers: int = 0, bundle: int = 32, **kwargs: Any
    ) -> None:
        if bundle < 1:
            raise ValueError("bundle must be positive")
        self.dataset = dataset
        self.num_workers = num_workers
        # Batches per worker -> main process transfer. Each transfer has a fixed cost and its
        # buffer is reused, so 32 default batches (about 17 MB) per transfer: measured about
        # 0.4 CPU-s per million rows cheaper than 8.
        self.bundle = bundle
        self.loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, **kwargs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Workers copy the dataset when iter() starts them: bundle only for this loader's
        # workers, so a plain DataLoader over the same dataset still gets single batches.
        self.dataset._bundle = self.bundle
        try:
            items = iter(self.loader)
        finally:
            self.dataset._bundle = 1
        for item in items:
            for batch in split(item) if BUNDLE in item else [item]:
                # Counted when the training loop receives the batch, not when a worker
                # prefetches it.
                if self.num_workers:
                    self.dataset.record(batch["worker"], self.num_workers)
                yield batch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the underlying dataset."""
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """Batches consumed per worker stream in the current epoch."""
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: create this loader with the same num_workers as the checkpoint."""
        if state["num_workers"] != max(self.num_workers, 1):
            raise ValueError(
                f"checkpoint has {state['num_workers']} worker streams, loader has "
                f"{max(self.num_workers, 1)}"
            )
        self.dataset.load_state_dict(state)
