"""The models an analyzer needs, loaded once per worker process, on first use.

A file that is missing (not built, not fetched) makes the analyzer fail with `no_model`: the
detect is refunded and its message says what is missing. No score is ever invented. The one
exception is the watermark decoder: a missing one fails only the detect's `watermark` child
(analysis/watermark.py), never the detect.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from services.detector.errors import AnalysisError

MODELS = Path(__file__).parent
HEAD = MODELS / "audio_head.json"
TRACER = MODELS / "tracing_head.json"
IDENTITY = MODELS / "identity.json"
IMAGE_HEAD = MODELS / "image_head.json"


def no_model(what: str) -> AnalysisError:
    return AnalysisError(
        "no_model",
        f"no evaluated {what} model is installed, so this file gets no verdict and is not charged",
    )


@functools.cache
def audio_models() -> tuple[Any, Any, Any] | None:
    """(audio head, CAM++, Silero VAD), or None when the head was not trained."""
    if not HEAD.is_file():
        return None
    from services.detector.models.logistic import LogisticHead
    from services.detector.models.onnx_models import CamPlusPlus, SileroVad

    return LogisticHead.load(HEAD), CamPlusPlus(), SileroVad()


@functools.cache
def tracer() -> Any:
    from services.detector.models.tracing import SourceTracer

    return SourceTracer.load(TRACER) if TRACER.is_file() else None


@functools.cache
def same_speaker() -> dict[str, JsonValue] | None:
    """How to read a voiceprint cosine (models/identity.md), or None when not calibrated."""
    if not IDENTITY.is_file():
        return None
    calibration = json.loads(IDENTITY.read_text())
    return {key: calibration[key] for key in ("model", "slope", "intercept", "threshold")}


@functools.cache
def image_model() -> Any:
    from services.detector.models.image_model import ImageDetector
    from services.detector.models.logistic import LogisticHead
    from services.detector.models.packaged import PackagedModelError

    if not IMAGE_HEAD.is_file():
        raise no_model("image detection")
    try:
        return ImageDetector(LogisticHead.load(IMAGE_HEAD))
    except PackagedModelError as exc:
        raise AnalysisError("no_model", f"the image model is not installed ({exc})") from exc


@functools.cache
def watermark_decoder() -> Any:
    """Perth's watermark decoder (models/watermark.md), or None when its ONNX file is missing.

    The file's sha256 is checked on first use (onnx_models.ModelIntegrityError if it differs).
    """
    from services.detector.models.watermark import PerthDecoder

    decoder = PerthDecoder()
    return decoder if decoder.path.is_file() else None


def warm_up() -> dict[str, str]:
    """Load every model a detect needs now, so the first file does not pay for it.

    Run in the worker process at start-up; the detector counts as started (/startupz) only
    after it. A model that is not installed is reported, not fatal: its detects fail with
    `no_model` as they would anyway. (Whisper, used only for intelligence, stays lazy.)
    """
    loaders = {
        "audio": audio_models,
        "tracing": tracer,
        "image": image_model,
        "watermark": watermark_decoder,
    }
    report: dict[str, str] = {}
    for name, load in loaders.items():
        try:
            report[name] = "loaded" if load() is not None else "not installed"
        except AnalysisError as exc:
            report[name] = exc.message
    return report
