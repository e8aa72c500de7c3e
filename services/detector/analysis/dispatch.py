"""The worker's entry point: one file, analysed by the analyzer of its media type.

`analyze(path, media_type, options, picture)` decodes the file (services/detector/media.py),
scores it with the modality's models (models/loaded.py) and, when `picture` is a path, writes
the file's visualization there; `use_llm` adds an operator's LLM commentary. The worker
(services/detector/worker.py) runs it by name (FUNCTION) in its child process. Per modality:
audio.py, image.py, video.py; the measured numbers are in services/detector/models/*.md.
The visual analyzers are imported on first use, so a worker that only ever sees audio never
loads OpenCV or the image model code. `detect_watermark` adds Resemble's `watermark` child
(analysis/watermark.py: Perth's audio watermark) after the deepfake analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import JsonValue

from services.detector.analysis import audio
from services.detector.errors import AnalysisError

FUNCTION = "services.detector.analysis.dispatch.analyze"


def analyze(
    path: str, media_type: str, options: dict[str, Any], picture: str | None = None
) -> dict[str, JsonValue]:
    target = Path(picture) if picture else None
    if media_type == "audio":
        result = audio.analyze_audio(Path(path), options, target)
    elif media_type == "image":
        from services.detector.analysis import image

        result = image.analyze_image(Path(path), options, target)
    elif media_type == "video":
        from services.detector.analysis import video

        result = video.analyze_video(Path(path), options, target)
    else:
        raise AnalysisError("unsupported_media", f"no analyzer for media type {media_type!r}")
    if options.get("use_llm"):
        from services.detector.analysis import llm

        report = result.get("intelligence")
        result["intelligence"] = {**(report if isinstance(report, dict) else {}),
                                  "llm": llm.commentary(result)}  # fmt: skip
    if options.get("detect_watermark"):  # its own child; a failed one never fails the detect
        from services.detector.analysis import watermark

        result["watermark"] = watermark.analyze_watermark(Path(path), media_type, options)
    return result
