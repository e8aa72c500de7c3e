"""Audio analysis: windows of `frame_length` s → Silero VAD (speech share) → window features
(models/audio_features.py) → the trained logistic head (models/audio_head.json) →
audio_verdict.py; optional source tracing, voiceprint (voiceprints.py) and intelligence report
(intelligence.py, models/transcripts.py). A video's audio track comes through here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from services.detector import media
from services.detector.analysis import audio_verdict, pictures, voiceprints
from services.detector.models import loaded, transcripts

MIN_SPEAKER_WINDOW = 1.0  # seconds; a shorter (last) window's voiceprint is too unsure to count


def _trace(features: Any) -> dict[str, JsonValue]:
    """API.md `audio_source_tracing`: the synthesizer family, for a file judged fake."""
    tracer = loaded.tracer()
    if tracer is None:
        return {"label": None, "error_message": "no source-tracing model is installed"}
    family, confidence = tracer.trace(features)
    return {
        "label": family,
        "confidence": round(confidence, 4),
        "error_message": None,
        "model": {"name": tracer.name, "version": tracer.version, "families": tracer.families},
    }


def analyze_audio(
    path: Path, options: dict[str, Any], picture: Path | None = None
) -> dict[str, JsonValue]:
    from services.detector.analysis.intelligence import AudioStats
    from services.detector.models.audio_features import window_features

    region = media.region_of(options)
    frame_length = float(options.get("frame_length", 2))
    models = loaded.audio_models()
    if models is None:  # still decode, so that a corrupt file says so rather than "no model"
        for _ in media.audio_windows(path, frame_length, region):
            pass
        raise loaded.no_model("audio detection")
    head, campp, vad = models
    envelope = pictures.Envelope() if picture else None
    stats = AudioStats() if options.get("intelligence") else None
    transcribed: list[Any] = []  # what the transcript will cover (intelligence only, bounded)
    scored: list[audio_verdict.WindowScore] = []
    scored_features = []
    for window in media.audio_windows(path, frame_length, region):
        speech = vad.speech_probabilities(window.samples)
        ratio = voiceprints.speech_ratio(speech)
        score = None
        if ratio >= audio_verdict.MIN_WINDOW_SPEECH_RATIO:
            features = window_features(window.samples, campp)
            score = float(head.probability(features[None, :])[0])
            scored_features.append(features)
            if stats is not None and window.end - window.start >= MIN_SPEAKER_WINDOW:
                stats.add_embedding(features[voiceprints.EMBEDDING])
        if envelope is not None:
            envelope.add(window.samples)
        if stats is not None:
            stats.add(window.samples, speech)
            if window.start - region.start < transcripts.MAX_SECONDS:
                transcribed.append(window.samples)
        scored.append(audio_verdict.WindowScore(window.start, window.end, ratio, score))
    model = audio_verdict.ModelInfo(head.name, head.version, head.threshold)
    result = audio_verdict.audio_metrics(scored, model)
    if options.get("search_identity"):
        weights = [w.speech_ratio for w in scored if w.score is not None]
        heard = voiceprints.speech_seconds(scored)
        result["voiceprint"] = voiceprints.combine(scored_features, weights, heard)
    metrics = result["metrics"]
    fake = isinstance(metrics, dict) and metrics.get("label") == "fake"
    if options.get("audio_source_tracing") and fake:
        result["audio_source_tracing"] = _trace(np.stack(scored_features))
    if stats is not None:
        result["intelligence"] = intelligence(stats, transcribed, region.start)
    if picture is not None and envelope is not None and scored:
        _audio_picture(picture, envelope, scored, result, model.threshold)
    return result


def intelligence(stats: Any, heard: list[Any], offset: float) -> dict[str, JsonValue]:
    """The local audio report (intelligence.py), speakers counted at the verification cosine,
    with a transcript of the speech when there is any (models/transcripts.py)."""
    calibration = loaded.same_speaker() or {}
    threshold = calibration.get("threshold", 0.5)
    report: dict[str, JsonValue] = stats.report(same_speaker_cosine=float(threshold))  # type: ignore[arg-type]
    unavailable, speech = report.get("unavailable"), report.get("speech_seconds")
    if heard and isinstance(unavailable, dict) and isinstance(speech, float) and speech > 0:
        report["transcript"] = transcripts.transcribe(np.concatenate(heard), offset)
        report["unavailable"] = {k: v for k, v in unavailable.items() if k != "transcript"}
    return report


def _audio_picture(
    picture: Path,
    envelope: pictures.Envelope,
    windows: list[audio_verdict.WindowScore],
    result: dict[str, JsonValue],
    threshold: float,
) -> None:
    """Waveform + per-window scores; its time axis starts where the analysed region does."""
    from services.detector.analysis import render

    start = windows[0].start
    listed: Any = result["segments"] or []
    segments = [{**s, "start": s["start"] - start, "end": s["end"] - start} for s in listed]
    png = render.audio_png(envelope.columns(), windows[-1].end - start, segments, threshold)
    pictures.write_png(picture, png)
    result["visualization"] = True
