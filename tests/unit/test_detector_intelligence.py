"""The local audio report measures what the signal shows, flags it by the documented rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from services.detector.analysis.intelligence import (
    MAX_KEPT_EMBEDDINGS,
    AudioStats,
    cluster_sizes,
    dbfs,
    evenly,
)

RATE = 16_000
SAME = 0.5  # same-speaker cosine threshold for the tests


def tone(seconds: float, amplitude: float, hz: float = 220.0) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def vad(samples: npt.NDArray[np.float32], probability: float) -> npt.NDArray[np.float32]:
    return np.full(-(-len(samples) // 512), probability, dtype=np.float32)


def feed(
    stats: AudioStats, audio: npt.NDArray[np.float32], speech: float, window: float = 2.0
) -> None:
    """`audio` in windows of `window` s, each with the same VAD probability."""
    size = round(window * RATE)
    for start in range(0, len(audio), size):
        chunk = audio[start : start + size]
        stats.add(chunk, vad(chunk, speech))


def report(*parts: tuple[npt.NDArray[np.float32], float]) -> Any:
    stats = AudioStats()
    for audio, speech in parts:
        feed(stats, audio, speech)
    return stats.report(same_speaker_cosine=SAME)


def quiet_noise(seconds: float, level: float = 1e-4) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(0)
    return (level * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def test_clean_speech_has_no_abnormality_and_sane_levels() -> None:
    out = report((tone(4, 0.3), 1.0), (quiet_noise(2), 0.0), (tone(4, 0.3), 1.0))
    assert out["abnormalities"] == []
    assert out["analysed_seconds"] == pytest.approx(10.0)
    assert out["speech_seconds"] == pytest.approx(8.0)
    assert out["speech_ratio"] == pytest.approx(0.8)
    # a sine of amplitude a has rms a/sqrt(2)
    assert out["loudness"]["speech_rms_dbfs"] == pytest.approx(dbfs(0.3 / np.sqrt(2)), abs=0.01)
    assert out["loudness"]["peak_dbfs"] == pytest.approx(dbfs(0.3), abs=0.01)
    assert out["loudness"]["rms_dbfs"] < out["loudness"]["speech_rms_dbfs"]
    assert out["noise"]["noise_floor_dbfs"] == pytest.approx(-80.0, abs=0.5)  # 1e-4 rms noise
    assert out["noise"]["snr_db"] > 50
    assert out["clipping"] == {"clipped_sample_ratio": 0.0, "clipped": False}
    assert out["language"] is None
    assert out["transcript"] is None
    assert set(out["unavailable"]) == {"language", "transcript"}


def test_clipped_sine_is_clipping() -> None:
    clipped = np.clip(tone(3, 2.0), -1.0, 1.0)
    out = report((clipped, 1.0))
    assert out["clipping"]["clipped"] is True
    assert out["clipping"]["clipped_sample_ratio"] > 0.3
    assert out["loudness"]["peak_dbfs"] == 0.0
    assert "clipping" in out["abnormalities"]


def test_quiet_speech_is_very_quiet() -> None:
    out = report((tone(3, 0.005), 1.0), (quiet_noise(1, 1e-6), 0.0))
    assert out["loudness"]["speech_rms_dbfs"] < -40
    assert "very_quiet" in out["abnormalities"]
    assert "noisy" not in out["abnormalities"]
    assert "clipping" not in out["abnormalities"]


def test_tone_under_loud_noise_is_noisy() -> None:
    rng = np.random.default_rng(0)
    noise = (0.2 * rng.standard_normal(4 * RATE)).astype(np.float32)
    out = report((noise + tone(4, 0.2), 1.0))
    assert out["noise"]["snr_db"] < 15
    assert "noisy" in out["abnormalities"]


def test_no_speech_at_all() -> None:
    out = report((tone(3, 0.3), 0.0))
    assert out["speech_ratio"] == 0.0
    assert out["speech_seconds"] == 0.0
    assert out["loudness"]["speech_rms_dbfs"] is None
    assert out["noise"]["snr_db"] is None
    assert "no_speech" in out["abnormalities"]
    assert "long_silence" not in out["abnormalities"]  # 3 s is not long


def test_twelve_seconds_without_speech_is_a_long_silence() -> None:
    out = report((tone(2, 0.3), 1.0), (np.zeros(12 * RATE, np.float32), 0.0), (tone(2, 0.3), 1.0))
    assert out["longest_silence_seconds"] == pytest.approx(12.0)
    assert out["abnormalities"] == ["long_silence"]


def test_eight_seconds_without_speech_is_not() -> None:
    out = report((tone(2, 0.3), 1.0), (np.zeros(8 * RATE, np.float32), 0.0), (tone(2, 0.3), 1.0))
    assert "long_silence" not in out["abnormalities"]


def test_short_vad_list_is_extended_with_its_last_value() -> None:
    stats = AudioStats()
    samples = tone(1, 0.3)
    stats.add(samples, np.ones(len(samples) // 512, dtype=np.float32))  # one frame short
    assert stats.speech_samples == len(samples)


def unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / np.linalg.norm(v)


def voices(
    centres: list[npt.NDArray[np.float64]], per: int, spread: float = 0.05
) -> list[npt.NDArray[np.float64]]:
    rng = np.random.default_rng(1)
    return [unit(c + spread * rng.standard_normal(c.size)) for c in centres for _ in range(per)]


def centres(count: int) -> list[npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    return [unit(rng.standard_normal(192)) for _ in range(count)]


def speakers(embeddings: list[npt.NDArray[np.float64]]) -> Any:
    stats = AudioStats()
    for e in embeddings:
        stats.add_embedding(e)
    return stats.report(same_speaker_cosine=SAME)["speakers"]


def test_two_embedding_clusters_are_two_speakers() -> None:
    out = speakers(voices(centres(2), per=6))
    assert out["estimated_count"] == 2
    assert out["cluster_sizes"] == [6, 6]
    assert out["windows_used"] == 12
    assert out["reason"] is None


def test_one_embedding_cluster_is_one_speaker() -> None:
    out = speakers(voices(centres(1), per=8))
    assert out["estimated_count"] == 1
    assert out["cluster_sizes"] == [8]


def test_a_stray_window_is_not_a_speaker() -> None:
    a, b = centres(2)
    out = speakers([*voices([a], per=10), b])
    assert out["cluster_sizes"] == [10, 1]
    assert out["estimated_count"] == 1


def test_fewer_than_two_embeddings_give_no_count_but_a_reason() -> None:
    out = speakers(voices(centres(1), per=1))
    assert out["estimated_count"] is None
    assert out["reason"]
    assert out["windows_used"] == 1


def test_average_linkage_does_not_chain() -> None:
    # a, m, b: m is close to both a and b, but a and b are far apart; average linkage keeps
    # a and b apart once m has joined one of them
    a, b = centres(2)
    m = unit(a + b)
    sizes = cluster_sizes(np.stack([a, m, b]), threshold=0.6)
    assert sorted(sizes) == [1, 2]


def test_embeddings_kept_are_bounded_and_evenly_spread() -> None:
    stats = AudioStats()
    vector = centres(1)[0]
    for _ in range(3 * MAX_KEPT_EMBEDDINGS):
        stats.add_embedding(vector)
    assert len(stats.embeddings) < MAX_KEPT_EMBEDDINGS
    out: Any = stats.report(same_speaker_cosine=SAME)["speakers"]
    assert out["windows_used"] == 500
    assert out["windows_with_embedding"] == 3 * MAX_KEPT_EMBEDDINGS
    assert out["estimated_count"] == 1


def test_evenly_spreads_indices() -> None:
    assert evenly(3, 5) == [0, 1, 2]
    picked = evenly(1000, 10)
    assert picked == list(range(0, 1000, 100))


def test_empty_stats_report() -> None:
    out: Any = AudioStats().report(same_speaker_cosine=SAME)
    assert out["analysed_seconds"] == 0.0
    assert out["speech_ratio"] == 0.0
    assert out["noise"] == {"noise_floor_dbfs": None, "snr_db": None}
    assert out["abnormalities"] == ["no_speech"]


def test_report_is_json_ready() -> None:
    import json

    out = report((tone(2, 0.3), 1.0))
    assert json.loads(json.dumps(out)) == out
