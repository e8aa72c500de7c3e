"""The detect's `watermark` child (`detect_watermark=true`): Perth's audio watermark, read with
the decoder of Resemble's open `resemble-perth` 1.0.1 (models/watermark.py, models/watermark.md).

Shaped as Resemble's `DetectWatermarkAnalysis`: `{"status": "completed", "metrics":
WatermarkAudioDetectionMetrics}` for audio and for a video's audio track, `{"status": "failed",
"error_message": ...}` for what cannot be read here (an image, a video without sound, a missing
or altered model file, audio that cannot be decoded). A failed child never fails the detect:
`analyze_watermark` returns a result for every input and raises nothing.

What is read: the whole `start_region`..`end_region` (and `max_video_secs` for a video), decoded
by media.py as 16 kHz mono in windows of `WINDOW_SECONDS`, one window in memory at a time. Each
window gets Perth's confidence; the file's is their duration-weighted mean, and the watermark is
`present` when it reaches `watermark.THRESHOLD`. A last window shorter than `MIN_TAIL_SECONDS` is
read together with the one before it. Channels are mixed down by media.py, so `has_watermark`
has one key, `"mono"`. Only Perth v1 runs here (`coverage_complete` is false; the `perth_v2`
entry says why), so `absent` means "not found by Perth v1", never "not watermarked".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from services.detector import media
from services.detector.models import loaded
from services.detector.models import watermark as perth
from services.detector.models.onnx_models import ModelIntegrityError

WINDOW_SECONDS = 10.0
MIN_TAIL_SECONDS = 1.0
MIN_SECONDS = 0.5
"""Less signal than this in the analysed region gives no confidence (`inconclusive`)."""
CHANNEL = "mono"
PERTH_V2_MISSING = (
    "Perth v2 is Resemble's hosted watermark model; no copy of it is available to this server"
)
NO_IMAGE_DETECTOR = (
    "no image watermark detector is installed: this server reads only Perth's audio watermark"
)
NO_AUDIO_TRACK = (
    "the video has no audio track, and no video watermark detector is installed: this server "
    "reads only Perth's audio watermark"
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowReading:
    start: float
    end: float
    confidence: float | None  # None: digital silence or too short to read


@dataclass(frozen=True)
class Reading:
    """Perth's confidence over the analysed region, window by window."""

    windows: tuple[WindowReading, ...]

    @property
    def seconds(self) -> float:
        """Seconds of audio that got a confidence."""
        return sum(w.end - w.start for w in self.windows if w.confidence is not None)

    @property
    def confidence(self) -> float | None:
        """Duration-weighted mean of the windows' confidences; None under `MIN_SECONDS`."""
        read = [w for w in self.windows if w.confidence is not None]
        if self.seconds < MIN_SECONDS:
            return None
        weights = [w.end - w.start for w in read]
        return float(np.average([w.confidence for w in read], weights=weights))


def read_watermark(path: Path, region: media.Region, decoder: perth.PerthDecoder) -> Reading:
    """Stream the region's audio through Perth's decoder (raises media.MediaError)."""
    readings: list[WindowReading] = []

    def score(window: media.Window) -> None:
        confidence = decoder.confidence(window.samples)
        readings.append(WindowReading(window.start, window.end, confidence))

    pending: media.Window | None = None
    for window in media.audio_windows(path, WINDOW_SECONDS, region):
        if pending is not None and window.end - window.start < MIN_TAIL_SECONDS:  # the last one
            samples = np.concatenate((pending.samples, window.samples))
            pending = media.Window(pending.start, window.end, samples)
            continue
        if pending is not None:
            score(pending)
        pending = window
    if pending is not None:
        score(pending)
    return Reading(tuple(readings))


def failed(message: str) -> dict[str, JsonValue]:
    return {"status": "failed", "error_message": message}


def _perth_v2() -> dict[str, JsonValue]:
    return {
        "model_version": "perth_v2",
        "status": "failed",
        "detected": None,
        "error": PERTH_V2_MISSING,
    }


def metrics(reading: Reading) -> dict[str, JsonValue]:
    """Resemble's WatermarkAudioDetectionMetrics for one reading (pure)."""
    confidence = reading.confidence
    v1: dict[str, JsonValue] = {"model_version": perth.MODEL_VERSION}
    if confidence is None:
        v1 |= {
            "status": "failed",
            "detected": None,
            "error": f"less than {MIN_SECONDS} s of audio signal to read a watermark from",
        }
        return {
            "overall_status": "inconclusive",
            "detected_model_versions": [],
            "coverage_complete": False,
            "has_watermark": {},
            "confidence": None,
            "model_results": [v1, _perth_v2()],
        }
    detected = confidence >= perth.THRESHOLD
    segments: list[JsonValue] = [
        {
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "confidence": None if w.confidence is None else round(w.confidence, 4),
        }
        for w in reading.windows
    ]
    v1 |= {
        "status": "succeeded",
        "detected": detected,
        "has_watermark": {CHANNEL: detected},
        "confidence": round(confidence, 4),
        # ours, beside Resemble's fields: what ran, at which threshold, over what
        "package": perth.PACKAGE,
        "threshold": perth.THRESHOLD,
        "seconds_analysed": round(reading.seconds, 3),
        "segments": segments,
    }
    return {
        "overall_status": "present" if detected else "absent",
        "detected_model_versions": [perth.MODEL_VERSION] if detected else [],
        "coverage_complete": False,
        "has_watermark": {CHANNEL: detected},
        "confidence": round(confidence, 4),
        "model_results": [v1, _perth_v2()],
    }


def analyze_watermark(path: Path, media_type: str, options: dict[str, Any]) -> dict[str, JsonValue]:
    """The `watermark` child for one file; never raises."""
    try:
        if media_type == "image":
            return failed(NO_IMAGE_DETECTOR)
        if media_type == "video" and not media.has_audio(path):
            return failed(NO_AUDIO_TRACK)
        decoder = loaded.watermark_decoder()
        if decoder is None:
            return failed("the Perth watermark model (onnx/perth_decoder.onnx) is not installed")
        region = media.region_of(options, media_type)
        return {"status": "completed", "metrics": metrics(read_watermark(path, region, decoder))}
    except ModelIntegrityError:
        return failed("the Perth watermark model file does not match its pinned sha256")
    except media.MediaError as exc:
        return failed(f"the audio cannot be read for a watermark: {exc}")
    except Exception as exc:  # a failed child must not fail the detect
        log.exception("watermark analysis failed")
        return failed(f"the watermark analysis failed ({type(exc).__name__})")
