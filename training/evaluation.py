"""Detection metrics, numpy only: ROC AUC, equal-error rate and the threshold that gives it.

Scores are "higher = more likely synthetic"; labels are 1 for synthetic, 0 for real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Operating:
    eer: float  # where the false-accept rate (real called fake) equals the false-reject rate
    threshold: float  # the score at that point
    auc: float


def auc(scores: Floats, labels: Labels) -> float:
    """Probability that a random synthetic clip scores above a random real one (ties: half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes")
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def equal_error(scores: Floats, labels: Labels) -> Operating:
    """The EER and its threshold, scanning every distinct score as a threshold."""
    fake = np.sort(scores[labels == 1])
    real = np.sort(scores[labels == 0])
    if not len(fake) or not len(real):
        raise ValueError("EER needs both classes")
    best = (2.0, 0.0, 0.0)
    for t in np.unique(scores):
        far = float(np.mean(real >= t))  # real called fake
        frr = float(np.mean(fake < t))  # fake called real
        gap = abs(far - frr)
        if gap < best[0]:
            best = (gap, (far + frr) / 2, float(t))
    return Operating(eer=best[1], threshold=best[2], auc=auc(scores, labels))
