"""Source tracing picks the family whose head scores a file's windows highest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.detector.models.logistic import LogisticHead
from services.detector.models.tracing import SourceTracer
from training.fitting import fit_logistic


def test_trains_traces_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    centres = {"diphone": np.array([3.0, 0.0]), "formant": np.array([0.0, 3.0])}
    x = np.vstack([c + rng.normal(size=(50, 2)) for c in centres.values()])
    family = np.repeat(list(centres), 50)
    heads = []
    for f in centres:
        mean, scale, weights, bias = fit_logistic(x, (family == f).astype(np.float64), l2=1.0)
        heads.append(LogisticHead(f, "1", "test", mean.tolist(), scale.tolist(),
                                  weights.tolist(), bias, 0.5))  # fmt: skip
    tracer = SourceTracer("t", "1", list(centres), heads)
    label, confidence = tracer.trace(np.array([[3.2, 0.1], [2.5, -0.4]]))
    assert label == "diphone"
    assert confidence > 0.9
    assert np.allclose(tracer.probabilities(x).sum(axis=1), 1.0)
    tracer.save(tmp_path / "t.json")
    again = SourceTracer.load(tmp_path / "t.json")
    assert again.trace(np.array([[0.0, 3.5]]))[0] == "formant"
