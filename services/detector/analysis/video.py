"""Video analysis: frames through the image probe, the audio track through the audio analyzer.

Frames at media.VIDEO_FPS (or `max_video_fps` when lower) over the analysed region
(`max_video_secs` included), each scored on its largest face, else the whole frame
(models/image_model.py); with `face_only` (or Resemble's legacy `model_types: talking_head`)
frames without a face are not scored. The audio track, when there is one, goes through audio.py
and fills `metrics`, its segments carry `track: "audio"`. Resemble's `modality` picks what runs:
`audio` (the track only), `video` (the pictures only) or `all` (both, the default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import JsonValue

from services.detector import media
from services.detector.analysis import pictures, visual_verdict
from services.detector.analysis.audio import analyze_audio
from services.detector.models import loaded


def analyze_video(
    path: Path, options: dict[str, Any], picture: Path | None = None
) -> dict[str, JsonValue]:
    from services.detector.models.image_model import crop_face, find_faces

    region = media.region_of(options, "video")
    modality = options.get("modality", "all")
    faces_only = bool(options.get("face_only")) or options.get("model_types") == "talking_head"
    fps = min(media.VIDEO_FPS, float(options.get("max_video_fps") or media.VIDEO_FPS))
    probe = loaded.image_model()
    strip = pictures.FrameStrip() if picture is not None else None
    frames: list[visual_verdict.FrameScore] = []
    sampled = media.video_frames(path, region, fps) if modality != "audio" else iter(())
    for timestamp, rgb in sampled:
        boxes = find_faces(rgb, limit=1)
        if faces_only and not boxes:
            continue
        image = Image.fromarray(rgb)
        (score,) = probe.score([crop_face(image, boxes[0]) if boxes else image])
        box = boxes[0].as_json() if boxes else None
        frames.append(
            visual_verdict.FrameScore(timestamp, visual_verdict.Region(score, box), len(boxes))
        )
        if strip is not None:
            strip.add(timestamp, image, score, probe.thresholds.label(score), box)
    result: dict[str, JsonValue] = {"model": probe.model_json(), "video_metrics": None}
    segments: list[JsonValue] = []
    reasons: list[JsonValue] = []
    if frames:
        tree, segments = visual_verdict.video_metrics(
            frames, float(options.get("frame_length", 2)), probe.thresholds
        )
        result["video_metrics"] = {**tree, "frames_per_second": fps, "face_only": faces_only}
    elif modality != "audio":
        reasons.append(
            "face_only: no face was found in any analysed frame"
            if faces_only
            else "no video frame could be decoded in the analysed region"
        )
    track = "not asked for (modality video)" if modality == "video" else None
    if track is None and not media.has_audio(path):
        track = "the video has no audio track"
        if modality == "audio":
            reasons.append("modality audio: the video has no audio track")
    if track is None:
        audio = analyze_audio(path, {**options, "end_region": region.end})
        metrics = audio["metrics"]
        assert isinstance(metrics, dict)
        result["metrics"] = {**metrics, "model": audio["model"]}
        for key in ("audio_source_tracing", "voiceprint", "intelligence"):
            if key in audio:
                result[key] = audio[key]
        audio_segments = audio["segments"]
        assert isinstance(audio_segments, list)
        segments.extend({"track": "audio", **s} for s in audio_segments if isinstance(s, dict))
    elif options.get("intelligence"):
        result["intelligence"] = {"unavailable": {"audio": track}}
    result["segments"] = segments
    result["reasons"] = reasons or None
    if strip is not None and strip.frames and picture is not None:
        from services.detector.analysis import render

        pictures.write_png(picture, render.video_png(strip.frames))
        result["visualization"] = True
    return result
