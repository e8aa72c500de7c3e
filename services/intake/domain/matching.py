"""Nearest saved identities for a voiceprint (API.md `identity_matches`): pure, numpy only.

`distance` is Resemble's 0-100 match score, higher is closer: 100 * cosine similarity of the two
unit-length voiceprints, floored at 0 (an identical sample scores 100); `score_type` says it is a
cosine. `cosine_distance` [ours] is 1 - cosine (0 = identical, 2 = opposite). `confidence` is
the detector model's calibrated probability that both are the same speaker,
sigmoid(slope * cosine + intercept), as measured in services/detector/models/identity.md.
`match` [ours] is whether the cosine reaches the model's threshold (its equal-error point on
held-out speakers; note that `confidence` there is about 0.55, not 0.5). Every saved identity is
ranked (nearest first); `top_k` cuts the list, the threshold does not: the client sees how close
the nearest voices are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import JsonValue


@dataclass(frozen=True)
class Saved:
    identity_id: str
    name: str
    embedding: Sequence[float]


def nearest(
    query: Sequence[float],
    saved: Sequence[Saved],
    same_speaker: Mapping[str, JsonValue],
    top_k: int,
) -> list[JsonValue]:
    if not saved:
        return []
    q = np.asarray(query, dtype=np.float64)
    q /= max(float(np.linalg.norm(q)), 1e-12)
    matrix = np.asarray([s.embedding for s in saved], dtype=np.float64)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    cosines = matrix @ q
    slope = float(same_speaker["slope"])  # type: ignore[arg-type]
    intercept = float(same_speaker["intercept"])  # type: ignore[arg-type]
    threshold = float(same_speaker["threshold"])  # type: ignore[arg-type]
    order = np.argsort(-cosines, kind="stable")[:top_k]
    return [
        {
            "uuid": saved[i].identity_id,
            "name": saved[i].name,
            "confidence": round(
                1.0 / (1.0 + math.exp(-(slope * float(cosines[i]) + intercept))), 4
            ),
            "distance": round(100 * max(0.0, float(cosines[i])), 2),
            "score_type": "cosine",
            "cosine_distance": round(1.0 - float(cosines[i]), 4),
            "match": bool(cosines[i] >= threshold),
        }
        for i in order
    ]
