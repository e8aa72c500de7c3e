"""Image and video results: the pure tree-building (visual_verdict) and the analyzers end to end
on real pixels (a packaged photograph) with the packaged CLIP probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.detector import media
from services.detector.analysis import dispatch
from services.detector.analysis.visual_verdict import (
    FrameScore,
    Region,
    image_metrics,
    video_metrics,
)
from services.detector.models import loaded
from services.detector.models.thresholds import Thresholds
from tests.support import media as generate

T = Thresholds(fake_at=0.8, real_below=0.3)


def test_three_labels_from_two_thresholds() -> None:
    assert [T.label(s) for s in (0.0, 0.3, 0.31, 0.79, 0.8, 1.0)] == [
        "Real", "Real", "Inconclusive", "Inconclusive", "Fake", "Fake"
    ]  # fmt: skip


def test_image_metrics_keep_the_whole_image_verdict_and_list_faces() -> None:
    face = Region(0.95, {"x": 1, "y": 2, "width": 30, "height": 30})
    metrics: Any = image_metrics(0.1, [face], T)
    assert metrics["type"] == "ImageAnalysis"
    assert (metrics["label"], metrics["score"], metrics["certainty (%)"]) == ("Real", 0.1, "90%")
    assert (metrics["conclusion"], metrics["certainty"]) == ("Real", 0.9)
    assert metrics["children"] == [{
        "type": "FaceResult", "label": "Fake", "conclusion": "Fake", "score": 0.95,
        "certainty": 0.95, "certainty (%)": "95%",
        "box": {"x": 1, "y": 2, "width": 30, "height": 30},
    }]  # fmt: skip


def test_video_tree_score_and_segments() -> None:
    frames = [
        FrameScore(0.0, Region(0.9, {"x": 0, "y": 0, "width": 9, "height": 9}), 1),
        FrameScore(1.0, Region(0.7), 0),
        FrameScore(2.0, Region(0.2), 0),
    ]
    metrics, segments = video_metrics(frames, 2.0, T)  # JSON: read as Any below
    tree: Any = metrics["children"]
    rows: Any = segments
    assert metrics["score"] == pytest.approx(0.6)
    assert metrics["label"] == "Inconclusive"
    assert metrics["frames_analysed"] == 3
    assert metrics["faces_found"] == 1
    assert (metrics["certainty"], metrics["certainty (%)"]) == (0.6, "60%")
    (video,) = tree
    assert video["type"] == "VideoResult"
    every_level = [video, video["children"][0], video["children"][0]["children"][0]]
    for node in every_level:  # Resemble's required fields, at every level of the tree
        assert {"type", "conclusion", "score", "certainty", "certainty (%)"} <= set(node)
        assert isinstance(node["certainty (%)"], str)
        assert 0.5 <= node["certainty"] <= 1
    stamps = [(i["timestamp"], i["children"][0]["kind"]) for i in video["children"]]
    assert stamps == [(0.0, "face"), (1.0, "frame"), (2.0, "frame")]
    assert [(s["start"], s["end"], s["score"], s["frames"]) for s in rows] == [
        (0.0, 2.0, 0.8, 2), (2.0, 4.0, 0.2, 1)
    ]  # fmt: skip
    assert str(metrics["treeview"]).splitlines()[0] == "Video: Inconclusive 0.60 (60%)"


def test_a_photo_is_scored_whole_and_per_face() -> None:
    result: Any = dispatch.analyze(str(generate.PHOTO), "image", {})
    metrics = result["image_metrics"]
    assert isinstance(metrics, dict)
    score = metrics["score"]
    assert isinstance(score, float)
    assert 0.0 <= score <= 1.0
    (face,) = metrics["children"]
    assert face["box"]["width"] > 50  # the astronaut's face
    assert result["model"]["name"] == "verity-image-lr"
    assert metrics["label"] == loaded.image_model().thresholds.label(score)


def test_a_broken_image_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(generate.png_bytes(320, 240)[:300])
    with pytest.raises(media.MediaError, match="image cannot be decoded"):
        dispatch.analyze(str(path), "image", {})


def test_video_frames_faces_and_audio_track(tmp_path: Path) -> None:
    path = tmp_path / "talk.mp4"
    path.write_bytes(generate.photo_video(6.0))
    result: Any = dispatch.analyze(str(path), "video", {"frame_length": 2, "max_video_secs": 4})
    video = result["video_metrics"]
    assert isinstance(video, dict)
    assert video["frames_analysed"] == 4  # 1 frame/s over the 4 s max_video_secs allows
    assert video["faces_found"] >= 1
    audio = result["metrics"]
    assert isinstance(audio, dict)
    assert audio["label"] in ("real", "fake")
    assert audio["model"]["name"] == "verity-audio-lr"
    tracks = [(s["track"], s["start"]) for s in result["segments"]]
    assert tracks == [("video", 0.0), ("video", 2.0), ("audio", 0.0), ("audio", 2.0)]


def test_resemble_video_options_pick_what_runs(tmp_path: Path) -> None:
    """modality, max_video_fps and face_only (model_types talking_head the same)."""
    path = tmp_path / "talk.mp4"
    path.write_bytes(generate.photo_video(4.0))
    pictures_only: Any = dispatch.analyze(str(path), "video", {"modality": "video"})
    assert "metrics" not in pictures_only
    assert pictures_only["video_metrics"]["frames_analysed"] == 4
    assert {s["track"] for s in pictures_only["segments"]} == {"video"}
    sound_only: Any = dispatch.analyze(str(path), "video", {"modality": "audio"})
    assert sound_only["video_metrics"] is None
    assert sound_only["metrics"]["model"]["name"] == "verity-audio-lr"
    assert sound_only["reasons"] is None
    slower: Any = dispatch.analyze(str(path), "video", {"modality": "video", "max_video_fps": 0.5})
    assert slower["video_metrics"]["frames_analysed"] == 2
    assert slower["video_metrics"]["frames_per_second"] == 0.5
    capped: Any = dispatch.analyze(str(path), "video", {"modality": "video", "max_video_fps": 30})
    assert capped["video_metrics"]["frames_per_second"] == media.VIDEO_FPS  # never raised
    faces: Any = dispatch.analyze(str(path), "video", {"modality": "video", "face_only": True})
    found = faces["video_metrics"]
    assert found["face_only"] is True
    assert found["frames_analysed"] == found["faces_found"] >= 1  # faceless frames not scored


def test_face_only_on_a_video_without_faces_says_so(tmp_path: Path) -> None:
    path = tmp_path / "flat.mp4"
    flat = tmp_path / "flat.png"
    Image.new("RGB", (320, 240), (90, 140, 60)).save(flat)
    path.write_bytes(generate.photo_video(3.0, photo=flat, speech=None))
    result: Any = dispatch.analyze(str(path), "video", {"model_types": "talking_head"})
    assert result["video_metrics"] is None
    assert result["reasons"] == ["face_only: no face was found in any analysed frame"]
    nothing: Any = dispatch.analyze(str(path), "video", {"modality": "audio"})
    assert nothing["reasons"] == ["modality audio: the video has no audio track"]


@pytest.mark.parametrize("size", [(3000, 2), (2, 3000), (1, 1)])
def test_extreme_shapes_are_scored_not_crashed(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "odd.png"
    Image.new("RGB", size, (120, 30, 200)).save(path)
    result: Any = dispatch.analyze(str(path), "image", {}, str(tmp_path / "odd_vis.png"))
    assert result["image_metrics"]["children"] == []  # no room for a face
    assert (tmp_path / "odd_vis.png").read_bytes().startswith(b"\x89PNG")
