"""The trained heads: logistic regression over standardised features (audio, image, tracing).

Small on purpose: each is trained here (`python -m training.train_audio`, `train_image`,
`train_tracing`; the fit is training/fitting.py, numpy only) and stored as JSON next to its
model card (services/detector/models/audio_head.json and audio.md, ...).
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
