"""Analyzers per modality, run inside the isolated worker (worker.py) by name.

`analyze(path, media_type, options)` decodes the file with the media pipeline (media.py) and
scores it with the modality's model. Models load once per worker process.

What exists today (services/detector/models/*.md has the measured numbers):
- audio: windows of `frame_length` s → Silero VAD (speech share) → window features
  (audio_features.py) → the trained logistic head (audio_head.json) → verdict.py.
- image and video: no evaluated model yet. Such a detect fails with `no_model` rather than
  getting an invented score: the wallet refunds it and the client reads why.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from services.detector import media, verdict
from services.detector.worker import AnalysisError

FUNCTION = "services.detector.analyzers.analyze"
HEAD = Path(__file__).parent / "models" / "audio_head.json"
TRACER = Path(__file__).parent / "models" / "tracing_head.json"
SPEECH_PROBABILITY = 0.5  # a VAD frame counts as speech from this probability on


def _no_model(media_type: str) -> AnalysisError:
    return AnalysisError(
        "no_model",
        f"no evaluated {media_type} detection model is installed yet, so this file gets no"
        " verdict and is not charged",
    )


@functools.cache
def _audio_models() -> tuple[Any, Any, Any] | None:
    if not HEAD.is_file():
        return None
    from services.detector.audio_head import LogisticHead
    from services.detector.onnx_models import CamPlusPlus, SileroVad

    return LogisticHead.load(HEAD), CamPlusPlus(), SileroVad()


def _region(options: dict[str, Any]) -> media.Region:
    return media.Region(options.get("start_region") or 0.0, options.get("end_region"))


@functools.cache
def _tracer() -> Any:
    from services.detector.tracing import SourceTracer

    return SourceTracer.load(TRACER) if TRACER.is_file() else None


def _trace(features: Any) -> dict[str, JsonValue]:
    """API.md `audio_source_tracing`: the synthesizer family, for a file judged fake."""
    tracer = _tracer()
    if tracer is None:
        return {"label": None, "error_message": "no source-tracing model is installed"}
    family, confidence = tracer.trace(features)
    return {
        "label": family,
        "confidence": round(confidence, 4),
        "error_message": None,
        "model": {"name": tracer.name, "version": tracer.version, "families": tracer.families},
    }


def analyze_audio(path: Path, options: dict[str, Any]) -> dict[str, JsonValue]:
    from services.detector.audio_features import window_features

    region = _region(options)
    models = _audio_models()
    if models is None:  # still decode, so that a corrupt file says so rather than "no model"
        for _ in media.audio_windows(path, float(options.get("frame_length", 2)), region):
            pass
        raise _no_model("audio")
    head, campp, vad = models
    scored: list[verdict.WindowScore] = []
    scored_features = []
    for window in media.audio_windows(path, float(options.get("frame_length", 2)), region):
        speech = vad.speech_probabilities(window.samples)
        ratio = float(np.mean(speech >= SPEECH_PROBABILITY)) if len(speech) else 0.0
        score = None
        if ratio >= verdict.MIN_WINDOW_SPEECH_RATIO:
            features = window_features(window.samples, campp)
            score = float(head.probability(features[None, :])[0])
            scored_features.append(features)
        scored.append(verdict.WindowScore(window.start, window.end, ratio, score))
    model = verdict.ModelInfo(head.name, head.version, head.threshold)
    result = verdict.audio_metrics(scored, model)
    metrics = result["metrics"]
    fake = isinstance(metrics, dict) and metrics.get("label") == "fake"
    if options.get("audio_source_tracing") and fake:
        result["audio_source_tracing"] = _trace(np.stack(scored_features))
    return result


def analyze(path: str, media_type: str, options: dict[str, Any]) -> dict[str, JsonValue]:
    if media_type == "audio":
        return analyze_audio(Path(path), options)
    region = _region(options)
    if media_type == "video":  # prove it decodes, so a corrupt file says so
        for _ in media.video_frames(Path(path), region):
            pass
    raise _no_model(media_type)
