"""An honest local report on a recording's audio: what can be measured here, and no more.

Everything comes from the signal, the VAD and the speaker embeddings the detector already
computes; nothing is guessed. Language stays None with the reason (no packaged model can tell
it); the transcript is added by the analyzer (models/transcripts.py) when speech was heard,
and stays None with the reason otherwise.

AudioStats accumulates window by window (16 kHz mono, windows in time order, not
overlapping) in bounded memory: running sums, a 0.1 dB histogram of 50 ms frame levels, the
current run of non-speech, and at most MAX_KEPT_EMBEDDINGS speaker embeddings (when full it
drops every other one and keeps every second one from then on, so they stay evenly spread).

Definitions (dBFS of an RMS is 20·log10(rms), floored at -120):
- speech: samples in a VAD frame (512 samples) with probability ≥ 0.5.
- noise floor: the 10th percentile of the 50 ms frame levels over the whole audio (to 0.1 dB).
- snr_db: speech_rms_dbfs - noise_floor_dbfs (None without speech).
- speakers: average-linkage agglomerative clustering of the window embeddings (at most
  MAX_CLUSTERED, evenly subsampled) by cosine similarity, merging while the closest pair of
  clusters is at least `same_speaker_cosine` alike. A cluster counts as a speaker when it
  holds ≥ 2 windows or ≥ 20 % of them (at least 1 speaker when any embedding exists).
  None, with a reason, below 2 embeddings.

Abnormalities, in this order:
- clipping: more than 0.1 % of samples at |x| ≥ 0.999.
- very_quiet: speech RMS below -40 dBFS.
- noisy: SNR below 15 dB.
- no_speech: less than 1 s of speech.
- long_silence: 10 s or more in a row without speech (anywhere, start and end included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

SAMPLE_RATE = 16_000
VAD_FRAME = 512
LEVEL_FRAME = 800  # 50 ms
SPEECH_PROBABILITY = 0.5
FLOOR_DBFS = -120.0
HISTOGRAM_STEP_DB = 0.1
NOISE_PERCENTILE = 10.0

CLIP_LEVEL = 0.999
CLIPPED_RATIO = 0.001  # > 0.1 % of samples
VERY_QUIET_DBFS = -40.0
NOISY_SNR_DB = 15.0
MIN_SPEECH_SECONDS = 1.0
LONG_SILENCE_SECONDS = 10.0

MAX_KEPT_EMBEDDINGS = 1000
MAX_CLUSTERED = 500
SPEAKER_SHARE = 0.2

SPEAKER_METHOD = (
    "average-linkage agglomerative clustering of per-window speaker embeddings by cosine "
    "similarity at the calibrated same-speaker threshold; a cluster counts when it holds at "
    "least 2 windows or 20% of them"
)
UNAVAILABLE: dict[str, JsonValue] = {
    "language": "no packaged language-identification model",
    "transcript": "no speech was found to transcribe",
}


def dbfs(rms: float) -> float:
    return max(20.0 * math.log10(rms), FLOOR_DBFS) if rms > 0 else FLOOR_DBFS


def _bins() -> int:
    return round(-FLOOR_DBFS / HISTOGRAM_STEP_DB) + 1


def _speech_mask(probabilities: npt.NDArray[np.float32], samples: int) -> npt.NDArray[np.bool_]:
    """Per sample: inside a speech VAD frame. A short probability list is extended with its
    last value (none at all: no speech)."""
    flags = np.asarray(probabilities, dtype=np.float64).reshape(-1) >= SPEECH_PROBABILITY
    if flags.size == 0:
        return np.zeros(samples, dtype=np.bool_)
    mask = np.repeat(flags, VAD_FRAME)[:samples]
    if mask.size < samples:
        mask = np.concatenate([mask, np.full(samples - mask.size, flags[-1])])
    return mask


def _frames(values: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    return [values[i : i + LEVEL_FRAME] for i in range(0, len(values), LEVEL_FRAME)]


class AudioStats:
    def __init__(self) -> None:
        self.samples = 0
        self.speech_samples = 0
        self.clipped_samples = 0
        self.sum_squares = 0.0
        self.speech_sum_squares = 0.0
        self.peak = 0.0
        self.levels = np.zeros(_bins(), dtype=np.int64)  # 50 ms frame dBFS histogram
        self.silent_run = 0  # samples since the last speech frame
        self.longest_silence = 0
        self.embeddings: list[npt.NDArray[np.float32]] = []
        self.embeddings_seen = 0
        self.stride = 1

    def add(
        self, samples: npt.NDArray[np.float32], speech_probabilities: npt.NDArray[np.float32]
    ) -> None:
        """One analysis window and its VAD probabilities (one per 512 samples)."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return
        x = np.nan_to_num(x)
        mask = _speech_mask(speech_probabilities, x.size)
        squares = x * x
        self.samples += x.size
        self.speech_samples += int(mask.sum())
        self.clipped_samples += int(np.count_nonzero(np.abs(x) >= CLIP_LEVEL))
        self.sum_squares += float(squares.sum())
        self.speech_sum_squares += float(squares[mask].sum())
        self.peak = max(self.peak, float(np.abs(x).max()))
        for frame, speech in zip(_frames(squares), _frames(mask), strict=True):
            self._add_frame(float(frame.mean()), frame.size, bool(speech.mean() >= 0.5))

    def _add_frame(self, mean_square: float, size: int, speech: bool) -> None:
        level = dbfs(math.sqrt(mean_square))
        index = round((level - FLOOR_DBFS) / HISTOGRAM_STEP_DB)
        self.levels[min(max(index, 0), len(self.levels) - 1)] += 1
        self.silent_run = 0 if speech else self.silent_run + size
        self.longest_silence = max(self.longest_silence, self.silent_run)

    def add_embedding(self, embedding: npt.NDArray[np.floating[Any]]) -> None:
        """The speaker embedding of one window with speech (normalised here to unit length)."""
        vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if not math.isfinite(norm) or norm == 0.0:
            return
        if self.embeddings and vector.size != self.embeddings[0].size:
            raise ValueError(f"embedding of size {vector.size}, not {self.embeddings[0].size}")
        index, self.embeddings_seen = self.embeddings_seen, self.embeddings_seen + 1
        if index % self.stride:
            return
        self.embeddings.append((vector / norm).astype(np.float32))
        if len(self.embeddings) >= MAX_KEPT_EMBEDDINGS:
            self.embeddings = self.embeddings[::2]
            self.stride *= 2

    def noise_floor_dbfs(self) -> float | None:
        total = int(self.levels.sum())
        if total == 0:
            return None
        rank = max(1, math.ceil(total * NOISE_PERCENTILE / 100))
        index = int(np.searchsorted(np.cumsum(self.levels), rank))
        return FLOOR_DBFS + index * HISTOGRAM_STEP_DB

    def report(self, same_speaker_cosine: float) -> dict[str, JsonValue]:
        analysed = self.samples / SAMPLE_RATE
        speech = self.speech_samples / SAMPLE_RATE
        rms = dbfs(math.sqrt(self.sum_squares / self.samples)) if self.samples else FLOOR_DBFS
        speech_rms = (
            dbfs(math.sqrt(self.speech_sum_squares / self.speech_samples))
            if self.speech_samples
            else None
        )
        floor = self.noise_floor_dbfs()
        snr = None if speech_rms is None or floor is None else speech_rms - floor
        clipped = self.clipped_samples / self.samples if self.samples else 0.0
        longest = self.longest_silence / SAMPLE_RATE
        speakers = speaker_summary(self.embeddings, same_speaker_cosine)
        speakers["windows_with_embedding"] = self.embeddings_seen
        return {
            "speech_ratio": round(speech / analysed, 4) if analysed else 0.0,
            "speech_seconds": round(speech, 3),
            "analysed_seconds": round(analysed, 3),
            "loudness": {
                "rms_dbfs": _db(rms),
                "speech_rms_dbfs": _db(speech_rms),
                "peak_dbfs": _db(dbfs(self.peak)),
            },
            "clipping": {
                "clipped_sample_ratio": round(clipped, 6),
                "clipped": clipped > CLIPPED_RATIO,
            },
            "noise": {"noise_floor_dbfs": _db(floor), "snr_db": _db(snr)},
            "longest_silence_seconds": round(longest, 3),
            "speakers": speakers,
            "abnormalities": abnormalities(
                clipped=clipped,
                speech_rms_dbfs=speech_rms,
                snr_db=snr,
                speech_seconds=speech,
                longest_silence_seconds=longest,
            ),
            "language": None,
            "transcript": None,
            "unavailable": dict(UNAVAILABLE),
        }


def _db(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def abnormalities(
    *,
    clipped: float,
    speech_rms_dbfs: float | None,
    snr_db: float | None,
    speech_seconds: float,
    longest_silence_seconds: float,
) -> list[JsonValue]:
    found: list[JsonValue] = []
    if clipped > CLIPPED_RATIO:
        found.append("clipping")
    if speech_rms_dbfs is not None and speech_rms_dbfs < VERY_QUIET_DBFS:
        found.append("very_quiet")
    if snr_db is not None and snr_db < NOISY_SNR_DB:
        found.append("noisy")
    if speech_seconds < MIN_SPEECH_SECONDS:
        found.append("no_speech")
    if longest_silence_seconds >= LONG_SILENCE_SECONDS:
        found.append("long_silence")
    return found


def evenly(count: int, most: int) -> list[int]:
    """Up to `most` indices into `count` items, evenly spread."""
    if count <= most:
        return list(range(count))
    return sorted({math.floor(i * count / most) for i in range(most)})


def cluster_sizes(unit: npt.NDArray[np.float64], threshold: float) -> list[int]:
    """Average-linkage agglomerative clustering of unit vectors by cosine; sizes, largest first.

    Merges the most similar pair of clusters while their mean pairwise cosine ≥ threshold.
    """
    similarity = unit @ unit.T
    sizes = np.ones(len(unit), dtype=np.float64)
    alive = np.ones(len(unit), dtype=np.bool_)
    np.fill_diagonal(similarity, -np.inf)
    while alive.sum() > 1:
        i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[i, j] < threshold:
            break
        merged = (sizes[i] * similarity[i] + sizes[j] * similarity[j]) / (sizes[i] + sizes[j])
        similarity[i, :], similarity[:, i] = merged, merged
        similarity[i, i] = -np.inf
        similarity[j, :], similarity[:, j] = -np.inf, -np.inf
        sizes[i] += sizes[j]
        alive[j] = False
    return sorted((int(s) for s in sizes[alive]), reverse=True)


def speaker_summary(
    embeddings: list[npt.NDArray[np.float32]], same_speaker_cosine: float
) -> dict[str, JsonValue]:
    chosen = [embeddings[i] for i in evenly(len(embeddings), MAX_CLUSTERED)]
    summary: dict[str, JsonValue] = {
        "estimated_count": None,
        "method": SPEAKER_METHOD,
        "windows_used": len(chosen),
        "cluster_sizes": [],
        "reason": None,
    }
    if len(chosen) < 2:
        summary["reason"] = "fewer than 2 speech windows with a speaker embedding"
        return summary
    sizes = cluster_sizes(np.stack(chosen).astype(np.float64), same_speaker_cosine)
    counted = [s for s in sizes if s >= 2 or s >= SPEAKER_SHARE * len(chosen)]
    listed: list[JsonValue] = list(sizes)
    summary["estimated_count"] = max(1, len(counted))
    summary["cluster_sizes"] = listed
    return summary
