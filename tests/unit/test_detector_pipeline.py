"""The detector's media pipeline and isolated worker (no Kafka, no database)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.detector import media
from services.detector.errors import AnalysisError
from services.detector.worker import IsolatedWorker
from tests.support import media as generate

TASKS = "tests.support.worker_tasks"


def test_audio_is_16k_mono_windows_of_frame_length(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(generate.wav_bytes(5.0, rate=44_100))
    windows = list(media.audio_windows(path, 2))
    assert [(w.start, w.end) for w in windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    assert [len(w.samples) for w in windows] == [32_000, 32_000, 16_000]
    tone = windows[0].samples
    assert tone.dtype == np.float32
    assert 0.1 < float(np.sqrt(np.mean(tone**2))) < 1.0  # the tone survived resampling


def test_regions_bound_what_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(generate.mp3_bytes(6.0))
    windows = list(media.audio_windows(path, 2, media.Region(1.0, 4.0)))
    assert windows[0].start == pytest.approx(1.0)
    assert windows[-1].end == pytest.approx(4.0, abs=0.01)
    assert sum(len(w.samples) for w in windows) == pytest.approx(3 * 16_000, abs=400)


def test_video_frames_are_sampled_once_a_second(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(generate.mp4_bytes(3.0))
    frames = list(media.video_frames(path))
    assert [round(t) for t, _ in frames] == [0, 1, 2]
    assert frames[0][1].shape == (64, 64, 3)
    assert media.has_audio(path)


def test_corrupt_and_streamless_input_is_a_media_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "bad.wav"
    corrupt.write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(media.MediaError, match="cannot open media"):
        list(media.audio_windows(corrupt, 2))
    silent_video = tmp_path / "mute.mp4"
    silent_video.write_bytes(generate.mp4_bytes(1.0, with_audio=False))
    with pytest.raises(media.MediaError, match="no audio stream"):
        list(media.audio_windows(silent_video, 2))


async def test_worker_times_out_survives_crashes_and_reports_failures() -> None:
    worker = IsolatedWorker()
    try:
        assert await worker.run(f"{TASKS}.echo", ({"a": 1},), seconds=30) == {"a": 1}
        with pytest.raises(AnalysisError) as timeout:
            await worker.run(f"{TASKS}.sleep_then", (30, "late"), seconds=0.5)
        assert timeout.value.code == "timeout"
        with pytest.raises(AnalysisError) as crashed:
            await worker.run(f"{TASKS}.crash", (), seconds=30)
        assert crashed.value.code == "analysis_crashed"
        with pytest.raises(AnalysisError) as bad:
            await worker.run(f"{TASKS}.bad_media", (), seconds=30)
        assert (bad.value.code, bad.value.message) == (
            "unsupported_media", "cannot open media: Invalid data found when processing input"
        )  # fmt: skip
        with pytest.raises(AnalysisError) as bug:
            await worker.run(f"{TASKS}.bug", (), seconds=30)
        assert bug.value.code == "analysis_error"
        assert await worker.run(f"{TASKS}.echo", ("still here",), seconds=30) == "still here"
    finally:
        worker.close()
