"""Analyzers per modality, run inside the isolated worker (worker.py) by name.

`analyze(path, media_type, options)` decodes the file with the media pipeline (media.py) and
scores it with the modality's model. Models load once per worker process.

What exists today (services/detector/models/*.md has the measured numbers):
- audio: windows of `frame_length` s → Silero VAD (speech share) → window features
  (audio_features.py) → the trained logistic head (audio_head.json) → verdict.py.
- image: the packaged CLIP probe (image_model.py) on the whole image, and on each face the
  Haar cascade finds → visual_verdict.py.
- video: frames at media.VIDEO_FPS, each scored on its largest face (else the whole frame) →
  visual_verdict.py; the audio track, when there is one, goes through the audio analyzer.
A modality whose model files are missing fails with `no_model` rather than getting an invented
score: the wallet refunds it and the client reads why.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from pydantic import JsonValue

from services.detector import media, verdict, visual_verdict
from services.detector.worker import AnalysisError

FUNCTION = "services.detector.analyzers.analyze"
VOICEPRINT_FUNCTION = "services.detector.analyzers.voiceprint"
HEAD = Path(__file__).parent / "models" / "audio_head.json"
TRACER = Path(__file__).parent / "models" / "tracing_head.json"
IDENTITY = Path(__file__).parent / "models" / "identity.json"
EMBEDDING = slice(0, 192)  # the CAM++ voiceprint inside the window features (audio_features.py)
MIN_VOICEPRINT_SPEECH = 1.0  # seconds of speech a voiceprint needs
MAX_VOICEPRINT_SECONDS = 300.0  # an enrolment or search sample is read up to this long
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


def _region(options: dict[str, Any], media_type: str = "audio") -> media.Region:
    """What to analyse; for video, `max_video_secs` caps it as intake billed it."""
    start = float(options.get("start_region") or 0.0)
    end = options.get("end_region")
    cap = options.get("max_video_secs")
    if media_type == "video" and cap is not None:
        end = start + float(cap) if end is None else min(float(end), start + float(cap))
    return media.Region(start, None if end is None else float(end))


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
    if options.get("search_identity"):
        weights = [w.speech_ratio for w in scored if w.score is not None]
        result["voiceprint"] = _voiceprint(scored_features, weights, _speech_seconds(scored))
    metrics = result["metrics"]
    fake = isinstance(metrics, dict) and metrics.get("label") == "fake"
    if options.get("audio_source_tracing") and fake:
        result["audio_source_tracing"] = _trace(np.stack(scored_features))
    return result


@functools.cache
def _same_speaker() -> dict[str, JsonValue]:
    calibration = json.loads(IDENTITY.read_text())
    keys = ("model", "slope", "intercept", "threshold")
    return {key: calibration[key] for key in keys}


def _speech_seconds(windows: list[verdict.WindowScore]) -> float:
    return sum((w.end - w.start) * w.speech_ratio for w in windows)


def _voiceprint(
    features: list[Any], weights: list[float], speech_seconds: float
) -> dict[str, JsonValue] | None:
    """The speech-weighted mean of the windows' CAM++ embeddings, unit length; None if too
    little speech was heard to say whose voice it is."""
    if speech_seconds < MIN_VOICEPRINT_SPEECH or not features:
        return None
    embeddings = np.stack([f[EMBEDDING] for f in features])
    mean = np.average(embeddings, axis=0, weights=np.asarray(weights) + 1e-9)
    unit = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return {
        "embedding": [round(float(v), 6) for v in unit],
        "speech_seconds": round(speech_seconds, 2),
        "same_speaker": _same_speaker(),
    }


def voiceprint(path: str, media_type: str) -> dict[str, JsonValue]:
    """The voiceprint of an identity sample or a search query (2 s windows with speech)."""
    from services.detector.audio_features import window_features

    models = _audio_models()
    if models is None or not IDENTITY.is_file():
        raise _no_model("speaker-embedding")
    _, campp, vad = models
    windows: list[verdict.WindowScore] = []
    features, weights = [], []
    for window in media.audio_windows(Path(path), 2.0, media.Region(0.0, MAX_VOICEPRINT_SECONDS)):
        speech = vad.speech_probabilities(window.samples)
        ratio = float(np.mean(speech >= SPEECH_PROBABILITY)) if len(speech) else 0.0
        windows.append(verdict.WindowScore(window.start, window.end, ratio, None))
        if ratio >= verdict.MIN_WINDOW_SPEECH_RATIO:
            features.append(window_features(window.samples, campp))
            weights.append(ratio)
    speech_seconds = _speech_seconds(windows)
    found = _voiceprint(features, weights, speech_seconds)
    if found is None:
        raise AnalysisError(
            "no_speech",
            f"only {speech_seconds:.1f} s of speech found in the {media_type};"
            f" a voiceprint needs at least {MIN_VOICEPRINT_SPEECH:g} s",
        )
    return found


@functools.cache
def _image_model() -> Any:
    from services.detector.image_model import ClipProbe
    from services.detector.models.packaged import PackagedModelError

    try:
        return ClipProbe()
    except PackagedModelError as exc:
        raise AnalysisError("no_model", f"the image model is not installed ({exc})") from exc


def _open_image(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # an animation is judged by its first frame
                oriented = ImageOps.exif_transpose(image)
                return oriented.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise media.MediaError(f"image cannot be decoded: {exc}") from exc


def analyze_image(path: Path) -> dict[str, JsonValue]:
    from services.detector.image_model import crop_face, find_faces

    image = _open_image(path)
    probe = _image_model()
    boxes = find_faces(np.asarray(image))
    scores = probe.score([image, *(crop_face(image, box) for box in boxes)])
    faces = [
        visual_verdict.Region(s, box.as_json()) for s, box in zip(scores[1:], boxes, strict=True)
    ]
    metrics = visual_verdict.image_metrics(scores[0], faces, probe.thresholds)
    return {"image_metrics": metrics, "model": probe.model_json(), "reasons": None}


def analyze_video(path: Path, options: dict[str, Any]) -> dict[str, JsonValue]:
    from services.detector.image_model import crop_face, find_faces

    region = _region(options, "video")
    probe = _image_model()
    frames: list[visual_verdict.FrameScore] = []
    for timestamp, rgb in media.video_frames(path, region):
        boxes = find_faces(rgb, limit=1)
        image = Image.fromarray(rgb)
        picture = crop_face(image, boxes[0]) if boxes else image
        (score,) = probe.score([picture])
        box = boxes[0].as_json() if boxes else None
        frames.append(
            visual_verdict.FrameScore(timestamp, visual_verdict.Region(score, box), len(boxes))
        )
    result: dict[str, JsonValue] = {"model": probe.model_json(), "video_metrics": None}
    segments: list[JsonValue] = []
    reasons: list[JsonValue] = []
    if frames:
        result["video_metrics"], segments = visual_verdict.video_metrics(
            frames, float(options.get("frame_length", 2)), probe.thresholds
        )
    else:
        reasons.append("no video frame could be decoded in the analysed region")
    if media.has_audio(path):
        audio = analyze_audio(path, {**options, "end_region": region.end})
        metrics = audio["metrics"]
        assert isinstance(metrics, dict)
        result["metrics"] = {**metrics, "model": audio["model"]}
        for key in ("audio_source_tracing", "voiceprint"):
            if key in audio:
                result[key] = audio[key]
        audio_segments = audio["segments"]
        assert isinstance(audio_segments, list)
        segments.extend({"track": "audio", **s} for s in audio_segments if isinstance(s, dict))
    result["segments"] = segments
    result["reasons"] = reasons or None
    return result


def analyze(path: str, media_type: str, options: dict[str, Any]) -> dict[str, JsonValue]:
    if media_type == "audio":
        return analyze_audio(Path(path), options)
    if media_type == "image":
        return analyze_image(Path(path))
    if media_type == "video":
        return analyze_video(Path(path), options)
    raise AnalysisError("unsupported_media", f"no analyzer for media type {media_type!r}")
