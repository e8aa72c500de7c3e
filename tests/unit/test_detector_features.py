"""The numpy front ends reproduce what the models were trained on (reference: torchaudio)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from services.detector.models.features import (
    AASIST_SAMPLES,
    aasist_window_starts,
    aasist_windows,
    kaldi_fbank,
)
from training.reference import (
    REFERENCE_JSON,
    SPEECH_WAV,
    read_wav,
    synthetic_signal,
)

FBANK_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REFERENCE_JSON.read_text())
    return loaded


def _signal(name: str) -> npt.NDArray[np.float32]:
    return synthetic_signal() if name == "synthetic" else read_wav(SPEECH_WAV)


@pytest.mark.parametrize("name", ["synthetic", "speech"])
def test_fbank_matches_torchaudio_kaldi(reference: dict[str, Any], name: str) -> None:
    expected = reference[name]["fbank"]
    feats = kaldi_fbank(_signal(name), subtract_mean=False)

    assert feats.dtype == np.float32
    assert feats.shape == (expected["num_frames"], 80)
    frames = feats[expected["frame_indices"]]
    frame_diff = float(np.abs(frames - np.array(expected["frames"])).max())
    mean_diff = float(np.abs(feats.mean(axis=0) - np.array(expected["bin_means"])).max())
    print(f"{name}: fbank max |diff| frames {frame_diff:.2e}, bin means {mean_diff:.2e}")
    assert frame_diff < FBANK_TOLERANCE
    assert mean_diff < FBANK_TOLERANCE


def test_fbank_mean_normalisation_is_the_default() -> None:
    wave = synthetic_signal(1.0)
    normalised = kaldi_fbank(wave)
    raw = kaldi_fbank(wave, subtract_mean=False)

    assert np.abs(normalised.mean(axis=0)).max() < 1e-4
    np.testing.assert_allclose(normalised, raw - raw.mean(axis=0), atol=1e-5)


def test_fbank_frame_count_follows_snip_edges() -> None:
    assert kaldi_fbank(np.zeros(399, np.float32)).shape == (0, 80)
    assert kaldi_fbank(np.zeros(400, np.float32)).shape == (1, 80)
    assert kaldi_fbank(np.zeros(16000, np.float32)).shape == (98, 80)
    # Digital silence sits on the log floor instead of producing -inf.
    assert np.isfinite(kaldi_fbank(np.zeros(16000, np.float32), subtract_mean=False)).all()


def test_fbank_long_input_is_processed_in_blocks_identically() -> None:
    wave = np.tile(synthetic_signal(5.0), 10)  # 50 s: more frames than one block
    whole = kaldi_fbank(wave, subtract_mean=False)
    head = kaldi_fbank(wave[:80000], subtract_mean=False)

    assert whole.shape == (4998, 80)
    # equal to float32 rounding: BLAS may sum a block of another shape in another order (seen
    # on one CPU: 2 % of the values one ulp apart), which is no difference a model can see
    np.testing.assert_allclose(whole[: len(head)], head, rtol=1e-6, atol=1e-6)


def test_fbank_rejects_multichannel_input() -> None:
    with pytest.raises(ValueError, match="mono"):
        kaldi_fbank(np.zeros((2, 16000), np.float32))


def test_short_input_is_repeated_not_zero_padded() -> None:
    wave = np.arange(1, 30001, dtype=np.float32)
    windows = aasist_windows(wave)

    assert windows.shape == (1, AASIST_SAMPLES)
    np.testing.assert_array_equal(windows[0, :30000], wave)
    np.testing.assert_array_equal(windows[0, 30000:60000], wave)
    np.testing.assert_array_equal(windows[0, 60000:], wave[: AASIST_SAMPLES - 60000])


def test_input_is_not_normalised() -> None:
    wave = np.full(AASIST_SAMPLES, 0.01, dtype=np.float32)
    np.testing.assert_array_equal(aasist_windows(wave)[0], wave)


def test_long_input_windows_cover_the_end_without_padding() -> None:
    wave = np.arange(100000, dtype=np.float32)
    windows = aasist_windows(wave)

    assert aasist_window_starts(wave.size) == [0, 100000 - AASIST_SAMPLES]
    assert windows.shape == (2, AASIST_SAMPLES)
    assert windows[0, 0] == 0
    assert windows[1, -1] == 99999
    assert aasist_window_starts(3 * AASIST_SAMPLES) == [0, AASIST_SAMPLES, 2 * AASIST_SAMPLES]
    assert aasist_window_starts(AASIST_SAMPLES + 10, hop=16000) == [0, 10]


def test_windowing_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match="no samples"):
        aasist_windows(np.zeros(0, np.float32))
