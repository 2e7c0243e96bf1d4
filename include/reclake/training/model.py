"""A small CTR model over SnapshotDataset batches: hashed user/item embeddings, a mean-pooled
embedding of the user's recent plays, and an MLP over log-scaled dense features."""

from __future__ import annotations

import torch
from torch import nn

# Multiplicative hashing spreads consecutive ids over the buckets (Knuth's constant).
_HASH = 2_654_435_761


def hash_ids(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """Map int64 ids to [0, buckets)."""
    return (ids * _HASH) % buckets


class CTRModel(nn.Module):
    """Predicts the logit of the label from one reader batch."""

    def __init__(self, num_dense: int, buckets: int = 1 << 16, dim: int = 16, hidden: int = 64):
        super().__init__()
        self.buckets = buckets
        self.user = nn.Embedding(buckets, dim)
        self.item = nn.Embedding(buckets, dim)  # shared by the target item and the sequence
        self.dense = nn.Sequential(nn.LayerNorm(num_dense), nn.Linear(num_dense, dim))
        self.mlp = nn.Sequential(nn.Linear(4 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits [B] for a batch with dense, user_id, item_id, sequence, sequence_len."""
        user = self.user(hash_ids(batch["user_id"], self.buckets))
        item = self.item(hash_ids(batch["item_id"], self.buckets))
        seq = self.item(hash_ids(batch["sequence"], self.buckets))  # [B, N, D]
        lengths = batch["sequence_len"]
        mask = torch.arange(seq.shape[1]) < lengths[:, None]
        pooled = (seq * mask[..., None]).sum(1) / lengths.clamp_min(1)[:, None]
        # Counts span orders of magnitude: log-scale them (all features are >= 0).
        dense = self.dense(torch.log1p(batch["dense"].clamp_min(0)))
        return self.mlp(torch.cat([user, item, pooled, dense], dim=1)).squeeze(1)
