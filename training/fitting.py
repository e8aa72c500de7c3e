"""Fitting the logistic heads the detector serves (models/logistic.py): numpy only."""

from __future__ import annotations

import numpy as np

from services.detector.models.logistic import Matrix, Vector


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
