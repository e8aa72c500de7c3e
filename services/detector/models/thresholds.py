"""A visual model's two thresholds, chosen on held-out scores (models/image.md).

Three answers, not two: `Fake` at or above `fake_at`, `Real` at or below `real_below`, and
`Inconclusive` between them, where the model cannot tell. Pure, so that the verdict rules
(analysis/visual_verdict.py) can use it without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    fake_at: float
    real_below: float

    def label(self, score: float) -> str:
        if score >= self.fake_at:
            return "Fake"
        if score <= self.real_below:
            return "Real"
        return "Inconclusive"
