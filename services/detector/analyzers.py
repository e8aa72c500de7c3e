"""Analyzers per modality, run inside the isolated worker (worker.py) by name.

`analyze(path, media_type, options, picture)` decodes the file with the media pipeline
(media.py), scores it with the modality's model (loaded.py) and, when `picture` is a path,
writes the file's visualization there. What exists (services/detector/models/*.md has the
measured numbers):
- audio (here): windows of `frame_length` s → Silero VAD (speech share) → window features
  (audio_features.py) → the trained logistic head (audio_head.json) → verdict.py; optional
  source tracing, voiceprint (voiceprints.py) and intelligence report (intelligence.py).
- image and video: visual_analysis.py (the packaged CLIP probe, faces, frames + audio track).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from services.detector import loaded, media, pictures, transcripts, verdict, voiceprints
from services.detector.worker import AnalysisError

FUNCTION = "services.detector.analyzers.analyze"
MIN_SPEAKER_WINDOW = 1.0  # seconds; a shorter (last) window's voiceprint is too unsure to count


def region_of(options: dict[str, Any], media_type: str = "audio") -> media.Region:
    """What to analyse; for video, `max_video_secs` caps it as intake billed it."""
    start = float(options.get("start_region") or 0.0)
    end = options.get("end_region")
    cap = options.get("max_video_secs")
    if media_type == "video" and cap is not None:
        end = start + float(cap) if end is None else min(float(end), start + float(cap))
    return media.Region(start, None if end is None else float(end))


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
    from services.detector.audio_features import window_features
    from services.detector.intelligence import AudioStats

    region = region_of(options)
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
    scored: list[verdict.WindowScore] = []
    scored_features = []
    for window in media.audio_windows(path, frame_length, region):
        speech = vad.speech_probabilities(window.samples)
        ratio = voiceprints.speech_ratio(speech)
        score = None
        if ratio >= verdict.MIN_WINDOW_SPEECH_RATIO:
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
        scored.append(verdict.WindowScore(window.start, window.end, ratio, score))
    model = verdict.ModelInfo(head.name, head.version, head.threshold)
    result = verdict.audio_metrics(scored, model)
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
    with a transcript of the speech when there is any (transcripts.py)."""
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
    windows: list[verdict.WindowScore],
    result: dict[str, JsonValue],
    threshold: float,
) -> None:
    """Waveform + per-window scores; its time axis starts where the analysed region does."""
    from services.detector import render

    start = windows[0].start
    listed: Any = result["segments"] or []
    segments = [{**s, "start": s["start"] - start, "end": s["end"] - start} for s in listed]
    png = render.audio_png(envelope.columns(), windows[-1].end - start, segments, threshold)
    pictures.write_png(picture, png)
    result["visualization"] = True


def analyze(
    path: str, media_type: str, options: dict[str, Any], picture: str | None = None
) -> dict[str, JsonValue]:
    from services.detector import visual_analysis

    target = Path(picture) if picture else None
    if media_type == "audio":
        result = analyze_audio(Path(path), options, target)
    elif media_type == "image":
        result = visual_analysis.analyze_image(Path(path), options, target)
    elif media_type == "video":
        result = visual_analysis.analyze_video(Path(path), options, target)
    else:
        raise AnalysisError("unsupported_media", f"no analyzer for media type {media_type!r}")
    if options.get("use_llm"):
        from services.detector import llm

        report = result.get("intelligence")
        result["intelligence"] = {**(report if isinstance(report, dict) else {}),
                                  "llm": llm.commentary(result)}  # fmt: skip
    return result
