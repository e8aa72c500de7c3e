"""Typed wrappers over the detector's ONNX Runtime sessions (AASIST, CAM++, Silero VAD).

Why this shape:

- Inference runs through ONNX Runtime only; torch never enters the service (issue 6, item 9). The
  files come from `training/export.py` and are pinned by `models/onnx/SHA256SUMS`.
- Every model is verified against that list when it is loaded, from the very bytes handed to ONNX
  Runtime, and a mismatch raises `ModelIntegrityError` instead of scoring with an unknown model: a
  truncated checkout, a Git LFS pointer or a swapped file must not silently produce verdicts.
- Sessions load lazily (the first call pays for it; `load()` does it eagerly) and default to one
  intra-op thread: the worker scales by processes, one per core, and per-core real-time factor is
  what the benchmark reports. Both thread counts are configurable.
- Inputs are 16 kHz mono float32 waveforms in [-1, 1]; the model-specific front ends live in
  `services.detector.models.features`.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]  # no py.typed; used behind typed wrappers

from services.detector.models.features import AASIST_SAMPLES, SAMPLE_RATE, kaldi_fbank

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "onnx"
SHA256SUMS = "SHA256SUMS"

VAD_FRAME = 512
"""Samples per Silero VAD decision at 16 kHz (32 ms)."""
VAD_CONTEXT = 64
"""Samples of the previous frame Silero VAD v5+ expects in front of each frame."""
CAMPP_MIN_FRAMES = 8
"""Fewer fbank frames (~0.1 s) make CAM++'s statistics pooling undefined (NaN)."""


class ModelIntegrityError(RuntimeError):
    """A model file is missing from SHA256SUMS or its bytes do not match the recorded sha256."""


def read_sha256sums(model_dir: Path) -> dict[str, str]:
    """Parse `sha256sum`-style lines ("<hex>  <name>") into {name: hex}."""
    sums: dict[str, str] = {}
    path = model_dir / SHA256SUMS
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise ModelIntegrityError(f"{path} is missing; cannot verify any model") from exc
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        sums[name.strip().lstrip("*")] = digest.strip().lower()
    return sums


class OnnxModel:
    """One lazily created, integrity-checked InferenceSession."""

    filename: ClassVar[str]

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
    ) -> None:
        self.model_dir = model_dir if model_dir is not None else DEFAULT_MODEL_DIR
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.model_dir / self.filename

    def load(self) -> None:
        """Verify and load the model now rather than on first use."""
        self._get_session()

    def _get_session(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                self._session = self._create_session()
            return self._session

    def _create_session(self) -> Any:
        expected = read_sha256sums(self.model_dir).get(self.filename)
        if expected is None:
            raise ModelIntegrityError(f"{self.filename} is not listed in {SHA256SUMS}")
        data = self.path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelIntegrityError(
                f"{self.path} has sha256 {actual}, {SHA256SUMS} expects {expected}; "
                "refusing to run it (rebuild with `python -m training.export`)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


class AasistResult(NamedTuple):
    """AASIST outputs for N windows."""

    bonafide_margin: npt.NDArray[np.float32]
    """[N] logit(bonafide) - logit(spoof): > 0 means the model leans bonafide. Uncalibrated."""
    embedding: npt.NDArray[np.float32]
    """[N, 160] last hidden layer, for heads trained on our own data."""


class Aasist(OnnxModel):
    """AASIST anti-spoofing (ASVspoof 2019 LA weights) over 64600-sample windows."""

    filename = "aasist.onnx"

    def run(self, windows: npt.NDArray[np.float32], batch_size: int = 1) -> AasistResult:
        """Score windows from `features.aasist_windows`, `batch_size` windows per session call.

        One window per call is the fastest on one thread (measured: batches of 4 cost ~25% more
        per window, batches of 8 ~65% more, as activations fall out of cache) and bounds memory.
        """
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != AASIST_SAMPLES or x.shape[0] == 0:
            raise ValueError(f"expected windows shaped [N>0, {AASIST_SAMPLES}], got {x.shape}")
        session = self._get_session()
        margins: list[npt.NDArray[np.float32]] = []
        embeddings: list[npt.NDArray[np.float32]] = []
        for start in range(0, x.shape[0], batch_size):
            embedding, logits = session.run(
                ["embedding", "logits"], {"waveform": x[start : start + batch_size]}
            )
            margins.append((logits[:, 1] - logits[:, 0]).astype(np.float32))
            embeddings.append(np.asarray(embedding, dtype=np.float32))
        return AasistResult(np.concatenate(margins), np.concatenate(embeddings))


class CamPlusPlus(OnnxModel):
    """CAM++ speaker embeddings (3D-Speaker, zh/en 16 kHz 'common advanced', 192-d)."""

    filename = "campplus.onnx"

    def embed(self, wave16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """L2-normalised 192-d embedding of one utterance; cosine similarity is then a dot product.

        Raises ValueError below ~0.1 s of audio, where the model's pooling is undefined.
        """
        return self.embed_features(kaldi_fbank(wave16k))

    def embed_features(self, fbank: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Same as `embed` from precomputed, mean-normalised `kaldi_fbank` frames [T, 80]."""
        feats = np.ascontiguousarray(fbank, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != 80:
            raise ValueError(f"expected fbank frames shaped [T, 80], got {feats.shape}")
        if feats.shape[0] < CAMPP_MIN_FRAMES:
            raise ValueError(
                f"{feats.shape[0]} fbank frames; CAM++ needs at least {CAMPP_MIN_FRAMES}"
            )
        (embedding,) = self._get_session().run(["embedding"], {"fbank": feats[None]})
        vector = np.asarray(embedding[0], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("CAM++ produced a degenerate embedding")
        return vector / np.float32(norm)


class SileroVad(OnnxModel):
    """Silero VAD v6 (the package's `silero_vad.onnx`) at 16 kHz."""

    filename = "silero_vad.onnx"

    def speech_probabilities(self, wave16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Speech probability per 512-sample (32 ms) frame, the last frame zero-padded.

        Mirrors silero-vad's own OnnxWrapper: the recurrent state starts at zero and is carried
        from frame to frame, and each frame is preceded by the last 64 samples of the previous one
        (zeros before the first), so results equal the package's `get_speech_timestamps` input.
        """
        x = np.asarray(wave16k, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected a mono waveform, got shape {x.shape}")
        num_frames = -(-x.size // VAD_FRAME)
        padded = np.zeros(VAD_CONTEXT + num_frames * VAD_FRAME, dtype=np.float32)
        padded[VAD_CONTEXT : VAD_CONTEXT + x.size] = x
        session = self._get_session()
        state = np.zeros((2, 1, 128), dtype=np.float32)
        sample_rate = np.array(SAMPLE_RATE, dtype=np.int64)
        probabilities = np.empty(num_frames, dtype=np.float32)
        for i in range(num_frames):
            chunk = padded[None, i * VAD_FRAME : i * VAD_FRAME + VAD_CONTEXT + VAD_FRAME]
            output, state = session.run(
                ["output", "stateN"], {"input": chunk, "state": state, "sr": sample_rate}
            )
            probabilities[i] = output[0, 0]
        return probabilities


def speech_segments(
    probabilities: npt.NDArray[np.float32],
    num_samples: int,
    *,
    threshold: float = 0.5,
    neg_threshold: float | None = None,
    min_speech_ms: float = 250.0,
    min_silence_ms: float = 100.0,
    speech_pad_ms: float = 30.0,
    sample_rate: int = SAMPLE_RATE,
) -> list[tuple[int, int]]:
    """Speech regions as (start, end) sample offsets from per-frame VAD probabilities.

    A port of silero-vad 6.2.3's `get_speech_timestamps_from_probs` with the same defaults and
    without its maximum-length splitting: speech starts at a frame >= `threshold`, ends after
    `min_silence_ms` below `neg_threshold` (default threshold - 0.15), regions shorter than
    `min_speech_ms` are dropped, and each region is widened by `speech_pad_ms` (split evenly
    when two regions are closer than twice that).
    """
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    min_speech = sample_rate * min_speech_ms / 1000
    min_silence = sample_rate * min_silence_ms / 1000
    pad = sample_rate * speech_pad_ms / 1000

    regions: list[list[int]] = []
    triggered = False
    start = 0
    temp_end = 0
    for i, probability in enumerate(np.asarray(probabilities, dtype=np.float64).tolist()):
        current = VAD_FRAME * i
        if probability >= threshold and temp_end:
            temp_end = 0
        if probability >= threshold and not triggered:
            triggered = True
            start = current
            continue
        if probability < neg_threshold and triggered:
            if not temp_end:
                temp_end = current
            if current - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                regions.append([start, temp_end])
            temp_end = 0
            triggered = False
    if triggered and num_samples - start > min_speech:
        regions.append([start, num_samples])

    for i, region in enumerate(regions):
        if i == 0:
            region[0] = int(max(0, region[0] - pad))
        if i != len(regions) - 1:
            following = regions[i + 1]
            silence = following[0] - region[1]
            if silence < 2 * pad:
                region[1] += int(silence // 2)
                following[0] = int(max(0, following[0] - silence // 2))
            else:
                region[1] = int(min(num_samples, region[1] + pad))
                following[0] = int(max(0, following[0] - pad))
        else:
            region[1] = int(min(num_samples, region[1] + pad))
    return [(start, end) for start, end in regions]
