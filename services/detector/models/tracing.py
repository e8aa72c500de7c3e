"""Audio source tracing: which family of synthesizer most likely made a fake voice.

One-vs-rest logistic heads over the same window features as the detector (audio_features.py),
trained here by `python -m training.train_tracing`; the families are those the
dataset builder could produce (formant, diphone, clustergen, vits). A family it never saw
cannot be named: the model card (models/tracing.md) shows where such voices land.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.detector.models.logistic import LogisticHead, Matrix


@dataclass(frozen=True)
class SourceTracer:
    name: str
    version: str
    families: list[str]
    heads: list[LogisticHead]
    metrics: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, x: Matrix) -> Matrix:
        """[N, families], each row normalised to sum to 1."""
        scores = np.stack([h.probability(x) for h in self.heads], axis=1)
        return np.asarray(scores / scores.sum(axis=1, keepdims=True), dtype=np.float64)

    def trace(self, window_features: Matrix) -> tuple[str, float]:
        """The most likely family over a file's scored windows, and its mean probability."""
        mean = self.probabilities(window_features).mean(axis=0)
        best = int(np.argmax(mean))
        return self.families[best], float(mean[best])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> SourceTracer:
        data = json.loads(path.read_text())
        heads = [LogisticHead(**h) for h in data.pop("heads")]
        return cls(heads=heads, **data)
