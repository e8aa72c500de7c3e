"""From image-probe scores to the detect item's image and video fields (API.md): pure, no I/O.

A score is the calibrated probability that the pixels were made by a generator. Three labels,
from the model's two thresholds: `Fake` (score ≥ fake_at), `Real` (score ≤ real_below) and
`Inconclusive` in between, where the model cannot tell (docs/detector.md explains why a binary
label at one threshold would mislead here). Every node carries Resemble's fields: `conclusion`
(= `label`), `certainty` = max(score, 1 - score), how far the score leans to its side, in 0-1,
and `certainty (%)`, the same as a string ("90%").

Image: `image_metrics` = the whole image's score and label; each face found is a child with its
own score (faces are scored, not used to overrule the whole image).
Video: one ImageResult per sampled frame (its face crop when a face is found, else the whole
frame); the video's score is the mean over frames; `segments` average the frames inside each
`frame_length` window. The tree is API.md's: video_metrics → VideoResult → ImageResult → Segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from services.detector.models.thresholds import Thresholds


@dataclass(frozen=True)
class Region:
    """A scored part of a picture: a face box, or the whole picture (box None)."""

    score: float
    box: dict[str, int] | None = None


@dataclass(frozen=True)
class FrameScore:
    timestamp: float
    region: Region  # the face crop when a face was found, else the whole frame
    faces: int  # faces found in the frame


def certainty(score: float) -> float:
    """In 0-1, as Resemble's `certainty`."""
    return round(max(score, 1 - score), 3)


def percent(score: float) -> str:
    """Resemble's `certainty (%)`: a string such as "90%" or "97.5%"."""
    return f"{round(100 * certainty(score), 1):g}%"


def _node(kind: str, score: float, thresholds: Thresholds) -> dict[str, JsonValue]:
    label = thresholds.label(score)
    return {
        "type": kind,
        "label": label,
        "conclusion": label,
        "score": round(score, 4),
        "certainty": certainty(score),
        "certainty (%)": percent(score),
    }


def image_metrics(
    whole: float, faces: Sequence[Region], thresholds: Thresholds
) -> dict[str, JsonValue]:
    children: list[JsonValue] = [
        {**_node("FaceResult", face.score, thresholds), "box": dict(face.box or {})}
        for face in faces
    ]
    return {**_node("ImageAnalysis", whole, thresholds), "children": children}


def video_metrics(
    frames: Sequence[FrameScore], frame_length: float, thresholds: Thresholds
) -> tuple[dict[str, JsonValue], list[JsonValue]]:
    """(`video_metrics`, video `segments`); frames must be non-empty and in time order."""
    score = sum(f.region.score for f in frames) / len(frames)
    images: list[JsonValue] = []
    for frame in frames:
        kind = "face" if frame.region.box is not None else "frame"
        segment = {**_node("Segment", frame.region.score, thresholds), "kind": kind}
        if frame.region.box is not None:
            segment["box"] = dict(frame.region.box)
        images.append({
            **_node("ImageResult", frame.region.score, thresholds),
            "timestamp": round(frame.timestamp, 3),
            "faces": frame.faces,
            "children": [segment],
        })  # fmt: skip
    video = {**_node("VideoResult", score, thresholds), "children": images}
    root = _node("VideoAnalysis", score, thresholds)
    metrics: dict[str, JsonValue] = {
        "label": root["label"],
        "conclusion": root["conclusion"],
        "score": root["score"],
        "certainty": root["certainty"],
        "certainty (%)": root["certainty (%)"],
        "treeview": _treeview(score, frames, thresholds),
        "frames_analysed": len(frames),
        "faces_found": sum(1 for f in frames if f.faces),
        "children": [video],
    }
    return metrics, _segments(frames, frame_length, thresholds)


def _segments(
    frames: Sequence[FrameScore], frame_length: float, thresholds: Thresholds
) -> list[JsonValue]:
    windows: dict[int, list[FrameScore]] = {}
    for frame in frames:
        windows.setdefault(int(frame.timestamp // frame_length), []).append(frame)
    segments: list[JsonValue] = []
    for index, members in sorted(windows.items()):
        score = sum(f.region.score for f in members) / len(members)
        segments.append({
            "track": "video",
            "start": round(index * frame_length, 3),
            "end": round((index + 1) * frame_length, 3),
            "score": round(score, 4),
            "label": thresholds.label(score).lower(),
            "frames": len(members),
        })  # fmt: skip
    return segments


def _treeview(score: float, frames: Sequence[FrameScore], thresholds: Thresholds) -> str:
    """A plain-text outline of the tree, one line per node, for people reading the JSON."""
    lines = [f"Video: {thresholds.label(score)} {score:.2f} ({percent(score)})"]
    for frame in frames:
        what = "face" if frame.region.box is not None else "frame"
        s = frame.region.score
        lines.append(
            f"  {frame.timestamp:7.2f}s {what}: {thresholds.label(s)} {s:.2f} ({percent(s)})"
        )
    return "\n".join(lines)
