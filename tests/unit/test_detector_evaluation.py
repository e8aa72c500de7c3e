"""EER and AUC on cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import auc, equal_error


def test_perfect_separation() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([0, 0, 1, 1])
    op = equal_error(scores, labels)
    assert (op.eer, op.auc) == (0.0, 1.0)
    assert 0.2 < op.threshold <= 0.8


def test_chance_and_ties() -> None:
    assert auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0


def test_known_eer() -> None:
    # reals 0.1..0.4 plus one high outlier; fakes 0.6..0.9 plus one low outlier: EER 0.2
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.95, 0.05, 0.6, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    op = equal_error(scores, labels)
    assert op.eer == pytest.approx(0.2)
    assert op.auc == pytest.approx(16 / 25)  # 4 of 5 fakes beat 4 of 5 reals
