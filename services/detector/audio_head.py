"""The trained audio classifier: logistic regression over standardised window features.

Small on purpose: it is trained here, on the dataset the builder makes, by
`python -m services.detector.models.train_audio`, and stored as JSON next to its model card
(services/detector/models/audio_head.json, audio.md). Training is numpy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogisticHead:
    name: str
    version: str
    features: str  # which window features, in which order (audio_features.FEATURES)
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    threshold: float  # probability at which a window / file is called fake (dev-set EER point)
    metrics: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: Matrix) -> Vector:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = z @ np.asarray(self.weights) + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> LogisticHead:
        return cls(**json.loads(path.read_text()))


def fit_logistic(
    x: Matrix, y: Vector, *, l2: float, iterations: int = 300
) -> tuple[Vector, Vector, Vector, float]:
    """(mean, scale, weights, bias) by Newton's method on the L2-penalised log loss.

    Classes are weighted to count equally, so an unbalanced split does not move the decision.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    positives = max(float(y.sum()), 1.0)
    negatives = max(float(len(y) - y.sum()), 1.0)
    sample_weight = np.where(y == 1, len(y) / (2 * positives), len(y) / (2 * negatives))
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not penalised
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (sample_weight * (p - y)) + penalty * w
        hessian = (z * (sample_weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return mean, scale, w[:-1], float(w[-1])
