"""Voiceprints: who is speaking, as one unit-length CAM++ embedding (identity search).

A voiceprint is the speech-weighted mean of the CAM++ embeddings of the windows that hold
speech (at least 30 % of the window, per Silero VAD), normalised to unit length; it needs at
least MIN_SPEECH seconds of speech. It comes with `same_speaker`, the calibration that turns a
cosine between two voiceprints into a probability (models/identity.md), so that whoever
compares them (intake) needs no model of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from services.detector import media
from services.detector.analysis import audio_verdict
from services.detector.errors import AnalysisError
from services.detector.models import loaded

FUNCTION = "services.detector.analysis.voiceprints.voiceprint"
EMBEDDING = slice(0, 192)  # the CAM++ part of the window features (models/audio_features.py)
MIN_SPEECH = 1.0  # seconds of speech a voiceprint needs
MAX_SAMPLE_SECONDS = 300.0  # an enrolment or search sample is read up to this long
SPEECH_PROBABILITY = 0.5  # a VAD frame counts as speech from this probability on


def speech_ratio(probabilities: Any) -> float:
    return float(np.mean(probabilities >= SPEECH_PROBABILITY)) if len(probabilities) else 0.0


def speech_seconds(windows: Sequence[audio_verdict.WindowScore]) -> float:
    return sum((w.end - w.start) * w.speech_ratio for w in windows)


def combine(
    features: Sequence[Any], weights: Sequence[float], seconds_of_speech: float
) -> dict[str, JsonValue] | None:
    """The voiceprint of these windows' features, or None with too little speech to say."""
    calibration = loaded.same_speaker()
    if seconds_of_speech < MIN_SPEECH or not features or calibration is None:
        return None
    embeddings = np.stack([f[EMBEDDING] for f in features])
    mean = np.average(embeddings, axis=0, weights=np.asarray(weights) + 1e-9)
    unit = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return {
        "embedding": [round(float(v), 6) for v in unit],
        "speech_seconds": round(seconds_of_speech, 2),
        "same_speaker": calibration,
    }


def voiceprint(path: str, media_type: str) -> dict[str, JsonValue]:
    """The voiceprint of an identity sample or a search query (2 s windows)."""
    from services.detector.models.audio_features import window_features

    models = loaded.audio_models()
    if models is None or loaded.same_speaker() is None:
        raise loaded.no_model("speaker-embedding")
    _, campp, vad = models
    windows: list[audio_verdict.WindowScore] = []
    features, weights = [], []
    for window in media.audio_windows(Path(path), 2.0, media.Region(0.0, MAX_SAMPLE_SECONDS)):
        ratio = speech_ratio(vad.speech_probabilities(window.samples))
        windows.append(audio_verdict.WindowScore(window.start, window.end, ratio, None))
        if ratio >= audio_verdict.MIN_WINDOW_SPEECH_RATIO:
            features.append(window_features(window.samples, campp))
            weights.append(ratio)
    heard = speech_seconds(windows)
    found = combine(features, weights, heard)
    if found is None:
        raise AnalysisError(
            "no_speech",
            f"only {heard:.1f} s of speech found in the {media_type};"
            f" a voiceprint needs at least {MIN_SPEECH:g} s",
        )
    return found
