"""The numpy AUC of the example job against the pairwise definition, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reclake.training.metrics import log_loss, roc_auc


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties count one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 10, 300) + labels * rng.integers(0, 3, 300)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores))


@pytest.mark.parametrize(
    "labels, scores, expected",
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),  # one discordant pair of four
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied: chance
        ([1, 1, 0], [0.9, 0.8, 0.1], 1.0),  # perfect ranking
    ],
)
def test_auc_known_values(labels, scores, expected):
    assert roc_auc(np.array(labels), np.array(scores)) == pytest.approx(expected)


def test_auc_is_undefined_for_one_class_and_log_loss_is_bce():
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2
    )
