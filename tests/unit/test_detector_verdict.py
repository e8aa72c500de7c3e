"""Per-window scores become the detect item's audio fields."""

from __future__ import annotations

from typing import Any

from services.detector.analysis.audio_verdict import ModelInfo, WindowScore, audio_metrics

MODEL = ModelInfo("test-head", "1", threshold=0.5)


def windows(*scores: float | None, speech: float = 1.0) -> list[WindowScore]:
    return [
        WindowScore(2.0 * i, 2.0 * (i + 1), speech if s is not None else 0.0, s)
        for i, s in enumerate(scores)
    ]


def test_fake_file_with_one_disagreeing_window() -> None:
    out: Any = audio_metrics(windows(0.9, 0.8, 0.3, 0.95), MODEL)
    assert out["metrics"]["label"] == "fake"
    assert out["metrics"]["score"] == ["0.90", "0.80", "0.30", "0.95"]
    assert out["metrics"]["aggregated_score"] == "0.74"
    assert out["metrics"]["consistency"] == "0.75"
    assert [s["label"] for s in out["segments"]] == ["fake", "fake", "real", "fake"]
    assert out["segments"][2] == {"start": 4.0, "end": 6.0, "score": 0.3, "label": "real"}
    assert out["model"] == {"name": "test-head", "version": "1", "threshold": 0.5}
    assert out["reasons"] is None


def test_silent_windows_get_no_score_and_do_not_count() -> None:
    out: Any = audio_metrics(windows(0.1, None, 0.2), MODEL)
    assert out["metrics"]["label"] == "real"
    assert out["metrics"]["score"] == ["0.10", "", "0.20"]
    assert out["metrics"]["aggregated_score"] == "0.15"
    assert out["segments"][1]["label"] == "inconclusive"
    assert out["segments"][1]["score"] is None


def test_too_little_speech_is_inconclusive_with_a_reason() -> None:
    out: Any = audio_metrics(windows(0.9, speech=0.2), MODEL)  # 0.4 s of speech
    assert out["metrics"]["label"] == "inconclusive"
    assert (out["metrics"]["aggregated_score"], out["metrics"]["consistency"]) == ("", "")
    assert "0.4 s of speech" in out["reasons"][0]
    assert audio_metrics([], MODEL)["reasons"] == ["no audio to analyse"]
