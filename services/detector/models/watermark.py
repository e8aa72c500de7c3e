"""Perth watermark detection (Resemble AI's `resemble-perth` 1.0.1, MIT) in numpy + ONNX Runtime.

The wheel's `PerthImplicitWatermarker.get_watermark(wav, sample_rate, round=False)` does four
things; three are signal processing, done here in numpy, and one is the network:

1. resample to the model's 32 kHz with `librosa.resample(res_type="polyphase")`, which is
   `scipy.signal.resample_poly`: for our 16 kHz input, up by 2 through a 41-tap Kaiser (beta 5)
   windowed-sinc low-pass (`upsample_16k_to_32k`);
2. torchaudio's `Spectrogram(n_fft=2048, win_length=2048, hop_length=320, window=hann,
   center=True, pad_mode="reflect", power=None)`, then the magnitude in dB floored at 1e-9 and
   normalised as (dB + 180) / 195 (the wheel's `cx_to_magphase` / `normalize`; the phase is not
   used) (`log_magnitude`);
3. the decoder network on that [1025, T] magnitude (`onnx/perth_decoder.onnx`, exported by
   `training/export_perth.py`; it includes the decoder's own frame mask and its three time
   scales);
4. clip to [0, 1] (`round=False` keeps the confidence).

Input is what `services/detector/media.py` decodes: 16 kHz mono float32 in [-1, 1]. The
unit tests hold `PerthDecoder.confidence` to the wheel's own `get_watermark` on the same samples.
torch, librosa and scipy are never needed here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from services.detector.models.onnx_models import OnnxModel

INPUT_RATE = 16_000
MODEL_RATE = 32_000
"""Perth's `hparams.yaml` sample_rate; the wheel resamples everything to it."""
N_FFT = 2048
HOP = 320
"""Spectrogram frames every 10 ms at 32 kHz."""
BINS = N_FFT // 2 + 1
MAGNITUDE_FLOOR = 1e-9
"""hparams `stft_magnitude_min`."""
HEADROOM_DB = 15.0
_MIN_DB = 20.0 * math.log10(MAGNITUDE_FLOOR)  # -180 dB
UPSAMPLE_HALF_LENGTH = 20
"""scipy's resample_poly: half_len = 10 * max(up, down) for up = 2, down = 1."""
KAISER_BETA = 5.0
"""scipy's resample_poly default window ('kaiser', 5.0)."""
MIN_SAMPLES = N_FFT // 4
"""16 kHz samples below which the 32 kHz signal is too short for the reflect-padded STFT."""
THRESHOLD = 0.5
"""A confidence at or above it is "watermarked": Perth's own `round()`, kept after checking it on
the evaluation's dev split (models/watermark.md, "How the threshold was chosen")."""
MODEL_VERSION = "perth_v1"
"""Resemble's name for the detector this is (models/watermark.md, "Which Perth")."""
PACKAGE = "resemble-perth 1.0.1"

Samples = npt.NDArray[np.float32]


@functools.cache
def _upsample_taps() -> npt.NDArray[np.float64]:
    """scipy.signal.firwin(41, 0.5, window=('kaiser', 5.0)) * 2, as resample_poly builds it."""
    n = np.arange(2 * UPSAMPLE_HALF_LENGTH + 1, dtype=np.float64) - UPSAMPLE_HALF_LENGTH
    taps = 0.5 * np.sinc(0.5 * n) * np.kaiser(n.size, KAISER_BETA)
    taps *= 2.0 / taps.sum()  # unit gain at DC, times the up factor
    taps.setflags(write=False)
    return taps


def upsample_16k_to_32k(samples: Samples) -> npt.NDArray[np.float64]:
    """`scipy.signal.resample_poly(x, 2, 1)` (what librosa's "polyphase" calls) in numpy.

    Zero-stuff by 2, filter with the centred 41-tap low-pass, zeros beyond both ends (scipy's
    padtype="constant"): output sample n is sum_k taps[k] * up[n + 20 - k].
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {x.shape}")
    stuffed = np.zeros(2 * x.size, dtype=np.float64)
    stuffed[::2] = x
    full = np.convolve(stuffed, _upsample_taps())
    return full[UPSAMPLE_HALF_LENGTH : UPSAMPLE_HALF_LENGTH + stuffed.size]


@functools.cache
def _hann() -> npt.NDArray[np.float64]:
    """torch.hann_window(2048) (periodic), torchaudio's Spectrogram default."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT, dtype=np.float64) / N_FFT)
    window.setflags(write=False)
    return window


def log_magnitude(samples32k: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Perth's normalised log-magnitude spectrogram [1025, T] of a 32 kHz signal.

    T = 1 + len // 320 (torch.stft with center=True: reflect-padded by 1024 on both sides).
    """
    x = np.asarray(samples32k, dtype=np.float64)
    if x.ndim != 1 or x.size <= N_FFT // 2:
        raise ValueError(f"need a mono signal longer than {N_FFT // 2} samples, got {x.shape}")
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _hann(), axis=1)
    magnitude = np.abs(spectrum).T
    decibels = 20.0 * np.log10(np.maximum(magnitude, MAGNITUDE_FLOOR))
    normalised: npt.NDArray[np.float32] = ((decibels - _MIN_DB) / (HEADROOM_DB - _MIN_DB)).astype(
        np.float32
    )
    return normalised


class PerthDecoder(OnnxModel):
    """Perth's watermark decoder (the PerthNet "implicit" run, step 250,000) over ONNX Runtime."""

    filename = "perth_decoder.onnx"

    def decode(self, magspec: npt.NDArray[np.float32]) -> float:
        """The network's raw output on one `log_magnitude` [1025, T] (T >= 2), not clipped."""
        x = np.ascontiguousarray(magspec, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != BINS or x.shape[1] < 2:
            raise ValueError(f"expected a magnitude spectrogram [{BINS}, T >= 2], got {x.shape}")
        (output,) = self._get_session().run(["confidence"], {"magspec": x[None]})
        return float(output[0])

    def confidence(self, samples: Samples) -> float | None:
        """`get_watermark(samples, sample_rate=16000, round=False)`: Perth's confidence in [0, 1]
        that the clip carries its watermark, or None when the clip is digital silence (every
        spectrogram frame at the floor: the decoder's frame mask would be empty) or shorter than
        `MIN_SAMPLES`.
        """
        x = np.asarray(samples, dtype=np.float32)
        if x.size < MIN_SAMPLES:
            return None
        magspec = log_magnitude(upsample_16k_to_32k(x))
        if float(magspec.sum(axis=0).max()) <= 0.0:
            return None
        return min(max(self.decode(magspec), 0.0), 1.0)
