"""Torch reference outputs of Perth's own `get_watermark`, for the watermark unit tests.

The tests run without torch, so they compare `services.detector.models.watermark` (numpy front end
+ `onnx/perth_decoder.onnx`) with numbers computed here by the wheel itself
(`perth.PerthImplicitWatermarker`, resemble-perth 1.0.1, librosa, torchaudio). It writes:

- `tests/data/detector/speech_perth_16k.wav`: `speech_16k.wav` watermarked by
  `apply_watermark(x, sample_rate=16000)` and stored as 16-bit PCM (as a client would send it);
- `tests/data/detector/perth_reference.json`: for that clip, the two clean test clips and the
  synthetic signal: `get_watermark(x, 16000, round=False)` and `round=True`, the decoder's raw
  output before the clip, and intermediate arrays (the 32 kHz polyphase resampling, spectrogram
  frames of the decoder's 128-bin sub-band, every frame's sum over the 1025 bins) so that a
  failing test says which step drifted.

Run from the repository root in an environment with the wheel installed (it declares no
dependencies; the ones its detector imports are pinned here):

    uv run --no-project --python 3.11 --with torch==2.15.0 --with torchaudio==2.11.1 \
        --with librosa==0.11.0 --with scipy==1.17.1 --with soxr==1.1.0 --with numpy==2.4.6 \
        --with pyyaml==6.0.4 --with 'setuptools<81' --with resemble-perth==1.0.1 \
        python -m training.reference_perth

(`setuptools<81`: the wheel imports `pkg_resources`; without it `perth.PerthImplicitWatermarker`
is silently None.) The script refuses to run if the installed package's checkpoint or decoder code
differ from the sha256 pinned in `training/export_perth.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training import export_perth
from training.paths import TEST_DATA
from training.reference import SPEECH_WAV, _round, read_wav, synthetic_signal

SPEECH2_WAV = TEST_DATA / "speech2_16k.wav"
WATERMARKED_WAV = TEST_DATA / "speech_perth_16k.wav"
REFERENCE_JSON = TEST_DATA / "perth_reference.json"
RESAMPLED_HEAD = 64
"""32 kHz samples stored from the start and from the middle of each clip."""
SUBBAND = 128


def write_wav(path: Path, samples: npt.NDArray[np.float32], sample_rate: int = 16000) -> None:
    """16-bit mono PCM, rounded and clipped as soundfile's PCM_16 writer does."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def check_installed_package(perth: Any) -> None:
    """The installed wheel must be the pinned one (same checkpoint, same decoder code)."""
    root = Path(perth.__file__).resolve().parent.parent
    for member in (export_perth.CHECKPOINT, f"{export_perth.PACKAGE}/model/decoder.py"):
        actual = hashlib.sha256((root / member).read_bytes()).hexdigest()
        expected = export_perth.PERTH.wheel.members[member]
        if actual != expected:
            raise SystemExit(f"installed {member} has sha256 {actual}, pinned {expected}")


def clip_reference(
    watermarker: Any, torch: Any, samples: npt.NDArray[np.float32]
) -> dict[str, Any]:
    """What the wheel computes for one 16 kHz clip, step by step."""
    librosa: Any = importlib.import_module("librosa")
    net = watermarker.perth_net
    resampled = librosa.resample(samples, orig_sr=16000, target_sr=32000, res_type="polyphase")
    magspec, _phase = net.ap.signal_to_magphase(torch.from_numpy(resampled))
    with torch.no_grad():
        raw = float(net.decoder(magspec[None])[0])
    frames = magspec.shape[1]
    picked = [0, 1, frames // 3, frames // 2, frames - 1]
    middle = resampled.size // 2
    return {
        "num_samples": int(samples.size),
        "confidence": float(watermarker.get_watermark(samples, sample_rate=16000, round=False)),
        "rounded": float(watermarker.get_watermark(samples, sample_rate=16000)),
        "decoder_raw": raw,
        "resampled": {
            "num_samples": int(resampled.size),
            "head": _round(resampled[:RESAMPLED_HEAD]),
            "middle_start": int(middle),
            "middle": _round(resampled[middle : middle + RESAMPLED_HEAD]),
        },
        "magspec": {
            "frames": int(frames),
            "frame_indices": picked,
            "subband": _round(magspec.numpy()[:SUBBAND, picked].T),
            "frame_sums": _round(magspec.numpy().sum(axis=0)),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REFERENCE_JSON)
    parser.add_argument("--watermarked", type=Path, default=WATERMARKED_WAV)
    args = parser.parse_args(argv)

    torch: Any = importlib.import_module("torch")
    torch.set_num_threads(1)
    perth: Any = importlib.import_module("perth")
    if perth.PerthImplicitWatermarker is None:
        raise SystemExit("perth.PerthImplicitWatermarker is None: install setuptools<81")
    check_installed_package(perth)
    watermarker = perth.PerthImplicitWatermarker(device="cpu")

    speech = read_wav(SPEECH_WAV)
    marked = watermarker.apply_watermark(speech, sample_rate=16000)
    write_wav(args.watermarked, marked)  # istft returns 124 samples fewer; stored as returned
    clips = {
        "speech": (SPEECH_WAV.name, speech),
        "speech2": (SPEECH2_WAV.name, read_wav(SPEECH2_WAV)),
        "speech_watermarked": (args.watermarked.name, read_wav(args.watermarked)),
        "synthetic": ("training.reference.synthetic_signal()", synthetic_signal()),
    }
    versions = {
        name: importlib.import_module(name).__version__
        for name in ("torch", "torchaudio", "librosa", "scipy", "numpy")
    }
    reference: dict[str, Any] = {
        "generated_by": "python -m training.reference_perth",
        "package": export_perth.PERTH.wheel.requirement,
        "versions": versions,
        "clips": {},
    }
    for name, (source, samples) in clips.items():
        entry = {"source": source, **clip_reference(watermarker, torch, samples)}
        reference["clips"][name] = entry
        print(f"{name:20s} {source:40s} confidence {entry['confidence']:.6f}")
    args.out.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes), {args.watermarked}")


if __name__ == "__main__":
    main()
