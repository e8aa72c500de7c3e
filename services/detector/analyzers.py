"""Analyzers per modality, run inside the isolated worker (worker.py) by name.

`analyze(path, media_type, options)` decodes the file with the media pipeline (media.py) and
scores it with the modality's model. A modality whose model has not been trained and evaluated
yet (see services/detector/models/) fails the detect with `no_model` rather than inventing a
score: the wallet refunds it, and the client reads why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import JsonValue

from services.detector import media
from services.detector.worker import AnalysisError

FUNCTION = "services.detector.analyzers.analyze"


def _decode_all(path: Path, media_type: str, options: dict[str, Any]) -> None:
    """Prove the file decodes over the requested region (raises MediaError otherwise)."""
    region = media.Region(options.get("start_region") or 0.0, options.get("end_region"))
    if media_type == "audio" or (media_type == "video" and media.has_audio(path)):
        for _ in media.audio_windows(path, float(options.get("frame_length", 2)), region):
            pass
    if media_type == "video":
        for _ in media.video_frames(path, region):
            pass


def analyze(path: str, media_type: str, options: dict[str, Any]) -> dict[str, JsonValue]:
    _decode_all(Path(path), media_type, options)
    raise AnalysisError(
        "no_model",
        f"no evaluated {media_type} detection model is installed yet, so this file gets no"
        " verdict and is not charged",
    )
