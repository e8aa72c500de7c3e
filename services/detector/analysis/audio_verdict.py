"""From per-window scores to the detect item's audio fields (API.md): pure, no I/O.

A window's score is the model's calibrated probability that the speech in it is synthetic.
Windows without enough speech get no score: a guess on silence or music is not a verdict.

- `score`: one string per `frame_length` window, in order; "" for a window without speech
  (documented in docs/detector.md: clients that parse every entry as a float must skip "").
- `aggregated_score`: the mean score of the speech windows.
- `label`: `fake` when the aggregated score reaches the model's threshold, else `real`;
  `inconclusive` (with `reasons`) when less than MIN_SPEECH_SECONDS of speech was found; then
  `aggregated_score` and `consistency` are "" too (Resemble's types are strings, never null).
- `consistency`: the share of speech windows whose own label agrees with the file's label.
- `segments`: each window with its start, end, score (or null) and label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

MIN_SPEECH_SECONDS = 1.0
MIN_WINDOW_SPEECH_RATIO = 0.3  # a window with less speech than this gets no score


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    threshold: float

    def as_json(self) -> dict[str, JsonValue]:
        return {"name": self.name, "version": self.version, "threshold": self.threshold}


@dataclass(frozen=True)
class WindowScore:
    start: float
    end: float
    speech_ratio: float  # share of the window the VAD found to be speech
    score: float | None  # None when the window was not scored (too little speech)


def _label(score: float, threshold: float) -> str:
    return "fake" if score >= threshold else "real"


def audio_metrics(windows: Sequence[WindowScore], model: ModelInfo) -> dict[str, JsonValue]:
    """The `metrics`, `segments`, `model` and (if needed) `reasons` of an audio result."""
    scored = [w for w in windows if w.score is not None]
    speech = sum((w.end - w.start) * w.speech_ratio for w in windows)
    segments: list[JsonValue] = [
        {
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "score": None if w.score is None else round(w.score, 4),
            "label": "inconclusive" if w.score is None else _label(w.score, model.threshold),
        }
        for w in windows
    ]
    scores: list[JsonValue] = ["" if w.score is None else f"{w.score:.2f}" for w in windows]
    reasons: list[str] = []
    if not windows:
        reasons.append("no audio to analyse")
    elif speech < MIN_SPEECH_SECONDS or not scored:
        reasons.append(
            f"only {speech:.1f} s of speech found; at least {MIN_SPEECH_SECONDS:g} s is needed"
        )
    if reasons:
        metrics: dict[str, JsonValue] = {
            "label": "inconclusive",
            "score": scores,
            "consistency": "",
            "aggregated_score": "",
        }
        return {
            "metrics": metrics,
            "segments": segments,
            "model": model.as_json(),
            "reasons": list(reasons),
        }
    values = [w.score for w in scored if w.score is not None]
    aggregated = sum(values) / len(values)
    label = _label(aggregated, model.threshold)
    agreeing = sum(_label(v, model.threshold) == label for v in values)
    metrics = {
        "label": label,
        "score": scores,
        "consistency": f"{agreeing / len(values):.2f}",
        "aggregated_score": f"{aggregated:.2f}",
    }
    return {"metrics": metrics, "segments": segments, "model": model.as_json(), "reasons": None}
