"""Export Perth's watermark decoder (resemble-perth 1.0.1, MIT) to ONNX from the pinned wheel.

Run from the repository root, in the same throwaway environment as `training/export.py` (torch
never enters the project's dependencies, CI or the service):

    uv run --no-project --python 3.11 --with torch==2.15.0 --with onnx==1.23.2 \
        --with onnxruntime==1.32.0 --with numpy==2.4.6 --with pip \
        python -m training.export_perth

It writes `services/detector/models/onnx/perth_decoder.onnx` and its line in `onnx/SHA256SUMS`
(the other lines are kept). The committed file was built with those versions (torch 2.15.0,
onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6, Python 3.11).

What it does, and why:

1. `pip download --no-deps --only-binary=:all: resemble-perth==1.0.1` into the cache and check
   the wheel's sha256 and that of every file taken out of it (the weights
   `perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar`, `hparams.yaml`, the model
   code, the license). The wheel is the only source of the weights; nothing else is downloaded.
2. Import the decoder's code from the wheel's own files (`perth_net_implicit/model/`, which needs
   torch only; the wheel's top-level package also wants librosa, torchaudio and pkg_resources,
   which the decoder does not use) and load the checkpoint's `decoder.*` weights strictly.
3. What `PerthImplicitWatermarker.get_watermark` does around the network (polyphase resampling to
   32 kHz, the STFT, the normalised log magnitude, the final clip) is numpy in
   `services/detector/models/watermark.py`; this script checks that the wheel's `hparams.yaml`
   still says what that module assumes. Only `Decoder.forward` is exported: its frame mask
   (`magmask`), its three time scales and the attention over them.
4. `Decoder.forward` computes its slow and fast time scales as `int(T * 1.25)` and
   `int(T * 0.75)`, Python integers that the TorchScript tracer freezes at the example's T (the
   exported graph would then resize every input to 375 frames). `_Traceable` is the same forward
   with those two sizes as `scale_factor` 1.25 / 0.75 with `recompute_scale_factor=True`, which
   gives floor(T * 1.25) and floor(T * 0.75) frames, the same numbers (both factors are exact in
   binary), so the traced graph keeps T dynamic. It reuses the wheel's layers and helpers and is
   checked to give bit-identical outputs to the wheel's `Decoder` before exporting.
5. TorchScript exporter (`dynamo=False`), opset 17, dynamic batch and frame axes; exported twice
   and the bytes compared, so a non-deterministic export fails here and not as a changed pin.
6. ONNX Runtime vs the wheel's torch decoder on seeded inputs of 2 to 3001 frames and on the
   numpy front end's output for the test clip: max |difference| must stay below 1e-4.

Exported interface (consumed by `services.detector.models.watermark.PerthDecoder`):
`magspec` float32 [B, 1025, T >= 2] (Perth's normalised log magnitude at 32 kHz, 10 ms frames)
-> `confidence` float32 [B], the decoder's output before `get_watermark` clips it to [0, 1].
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from training import export
from training.paths import MODELS
from training.wheels import pip_command

ONNX_FILE = "perth_decoder.onnx"
MAX_EXPORT_DIFF = 1e-4
EXAMPLE_FRAMES = 300
CHECK_FRAMES = (2, 3, 37, 239, 1001, 3001)
PACKAGE = "perth/perth_net/perth_net_implicit"
CHECKPOINT = "perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar"
HPARAMS = "perth/perth_net/pretrained/implicit/hparams.yaml"
LICENSE = "resemble_perth-1.0.1.dist-info/licenses/LICENSE"


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel pinned by its own sha256 as well as by the files taken out of it."""

    wheel: export.Wheel
    sha256: str


PERTH = PinnedWheel(
    export.Wheel(
        "resemble-perth==1.0.1",
        "resemble_perth-1.0.1-py3-none-any.whl",
        {
            CHECKPOINT: "a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670",
            HPARAMS: "c66e8f8ce5b09d100e719843a064d37a97c5aec13510824343bf4e096b3184db",
            f"{PACKAGE}/__init__.py": (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
            f"{PACKAGE}/config.py": (
                "e2f001e114e516f11cc2b8c093d12f3b186a7881f3a3fcd7d81c6ae9fbdf5b58"
            ),
            f"{PACKAGE}/model/__init__.py": (
                "95a7e10765d8df2012539cf9501802df44af684960eedbd8d614f246cf4b99b5"
            ),
            f"{PACKAGE}/model/encoder.py": (
                "ba3c59ca2ebb5ad10f86fc5a6807b1678c98852aae1a3bdf959ca85ade94ef39"
            ),
            f"{PACKAGE}/model/decoder.py": (
                "3d338d3edadc9b162f1084bd41eb833a0976667849d8e722548e08869079ec6c"
            ),
            LICENSE: "4543f6777abede354f09bc2ba6580bd475c364e7d6f39315bf9d315d033b48f4",
        },
    ),
    "65e9c37531b1a128a4a56226b75dece4521683cf3611b0b2a5ffe234f00c9342",
)


def fetch(cache_dir: Path) -> Path:
    """The pinned wheel, downloaded once, checked, and its listed files extracted; their root."""
    wheel = PERTH.wheel
    wheel_dir = cache_dir / "wheels"
    path = wheel_dir / wheel.filename_glob
    if not path.is_file():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*pip_command(), "download", "--no-deps", "--only-binary=:all:", "--dest"]
        subprocess.run([*cmd, str(wheel_dir), wheel.requirement], check=True)
    actual = export.sha256_of(path)
    if actual != PERTH.sha256:
        raise SystemExit(f"{path.name} has sha256 {actual}, expected {PERTH.sha256}")
    print(f"verified {path.name} sha256={actual}")
    return export.extract_verified(wheel, path, cache_dir / "extracted")


def read_hparams(root: Path) -> dict[str, str]:
    """The checkpoint's flat `key: value` hparams.yaml, as strings (no yaml dependency)."""
    pairs = (
        line.split(":", 1) for line in (root / HPARAMS).read_text().splitlines() if ":" in line
    )
    return {key.strip(): value.strip() for key, value in pairs}


def check_front_end_constants(root: Path) -> None:
    """Fail if the wheel's hparams disagree with what models/watermark.py computes in numpy."""
    from services.detector.models import watermark

    hp = read_hparams(root)
    expected = {
        "sample_rate": str(watermark.MODEL_RATE),
        "n_fft": str(watermark.N_FFT),
        "window_size": str(watermark.N_FFT),
        "hop_size": str(watermark.HOP),
        "window_fn": "hann",
        "max_wmark_freq": "2000",
        "hidden_size": "256",
    }
    wrong = {k: (hp.get(k), v) for k, v in expected.items() if hp.get(k) != v}
    if float(hp["stft_magnitude_min"]) != watermark.MAGNITUDE_FLOOR:
        wrong["stft_magnitude_min"] = (hp["stft_magnitude_min"], str(watermark.MAGNITUDE_FLOOR))
    if wrong:
        raise SystemExit(f"{HPARAMS} differs from models/watermark.py (got, expected): {wrong}")


def load_model_package(root: Path) -> ModuleType:
    """The wheel's `perth_net_implicit` package under a private name, without its siblings.

    Only `config.py` and `model/` are extracted; the package's own `__init__.py` is empty, so
    importing `<name>.model.decoder` runs nothing but the wheel's decoder and encoder code.
    """
    directory = root / PACKAGE
    spec = importlib.util.spec_from_file_location(
        "_verity_perth", directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {directory}")
    package = importlib.util.module_from_spec(spec)
    sys.modules["_verity_perth"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("_verity_perth.model.decoder")


def build_decoder(torch: Any, root: Path) -> Any:
    """The wheel's `Decoder(hidden, subband)` with the checkpoint's `decoder.*` weights."""
    decoder_module = load_model_package(root)
    model_module = importlib.import_module("_verity_perth.model")
    config_module = importlib.import_module("_verity_perth.config")
    hp = read_hparams(root)
    config = config_module.default_hp._replace(
        sample_rate=int(hp["sample_rate"]),
        n_fft=int(hp["n_fft"]),
        max_wmark_freq=float(hp["max_wmark_freq"]),
        hidden_size=int(hp["hidden_size"]),
    )
    subband = model_module.compute_subband_freq(config)
    decoder = decoder_module.Decoder(config.hidden_size, subband)
    checkpoint = torch.load(root / CHECKPOINT, map_location="cpu", weights_only=True)
    print(f"checkpoint step {checkpoint['step']:,}, subband {subband} bins")
    state = {
        key.removeprefix("decoder."): value
        for key, value in checkpoint["model"].items()
        if key.startswith("decoder.")
    }
    decoder.load_state_dict(state, strict=True)
    return decoder.eval()


def traceable(torch: Any, decoder: Any) -> Any:
    """`Decoder.forward` with its two resize sizes as scale factors (module docstring, step 4)."""
    functional = torch.nn.functional
    helpers = sys.modules[type(decoder).__module__]

    class _Traceable(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.decoder = decoder

        def _branch(self, layers: Any, x: Any, mask: Any) -> tuple[Any, Any]:
            out = layers(x)
            attn, wmarks = out[:, :1], out[:, 1:]
            frames = helpers._nerp(mask, wmarks.size(2))
            return helpers._masked_mean(wmarks, frames), helpers._masked_mean(attn, frames)

        def _lerp(self, x: Any, factor: float) -> Any:
            return functional.interpolate(
                x, scale_factor=factor, mode="linear", align_corners=True,
                recompute_scale_factor=True,
            )  # fmt: skip

        def forward(self, magspec: Any) -> Any:
            mask = helpers.magmask(magspec.detach())[:, None]
            subband = magspec[:, : self.decoder.subband]
            slow = self._branch(self.decoder.slow_layers, self._lerp(subband, 1.25), mask)
            normal = self._branch(self.decoder.normal_layers, subband, mask)
            fast = self._branch(self.decoder.fast_layers, self._lerp(subband, 0.75), mask)
            attn = functional.softmax(torch.cat([slow[1], normal[1], fast[1]], dim=1), dim=1)
            return (torch.cat([slow[0], normal[0], fast[0]], dim=1) * attn).sum(dim=1)

    return _Traceable().eval()


def check_traceable(torch: Any, decoder: Any, wrapped: Any) -> None:
    """The re-expressed forward must equal the wheel's bit for bit, eagerly, at any length."""
    generator = torch.Generator().manual_seed(1)
    for frames in CHECK_FRAMES:
        x = torch.rand(2, 1025, frames, generator=generator)
        with torch.no_grad():
            if not torch.equal(wrapped(x), decoder(x)):
                raise SystemExit(f"_Traceable differs from the wheel's Decoder at T={frames}")
    print(f"_Traceable == wheel Decoder (bitwise) at T in {CHECK_FRAMES}")


def export_onnx(torch: Any, wrapped: Any, out: Path) -> None:
    example = torch.rand(1, 1025, EXAMPLE_FRAMES, generator=torch.Generator().manual_seed(0))
    export.torchscript_export(
        torch,
        wrapped,
        example,
        out,
        inputs=["magspec"],
        outputs=["confidence"],
        dynamic_axes={"magspec": {0: "batch", 2: "frames"}, "confidence": {0: "batch"}},
        props={
            "source": f"{PERTH.wheel.requirement} {CHECKPOINT} (decoder.*)",
            "source_sha256": PERTH.wheel.members[CHECKPOINT],
            "wheel_sha256": PERTH.sha256,
            "license": "MIT (Copyright (c) 2025 Resemble AI)",
            "input": "magspec float32 [B, 1025, T>=2]: Perth normalised log magnitude, 32 kHz",
            "outputs": "confidence [B], before get_watermark's clip to [0, 1]",
        },
    )


def check_against_torch(torch: Any, decoder: Any, path: Path) -> float:
    """Max |ONNX Runtime - torch| over seeded inputs and the test clip's real spectrogram."""
    import numpy as np

    from services.detector.models import watermark
    from training.reference import SPEECH_WAV, read_wav

    ort: Any = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options)
    rng = np.random.default_rng(0)
    inputs = [
        rng.random((batch, 1025, t), dtype=np.float32) for t in CHECK_FRAMES for batch in (1, 2)
    ]
    speech = watermark.log_magnitude(watermark.upsample_16k_to_32k(read_wav(SPEECH_WAV)))
    inputs.append(speech[None])
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            reference = decoder(torch.from_numpy(x)).numpy()
        (got,) = session.run(["confidence"], {"magspec": x})
        worst = max(worst, float(np.abs(got - reference).max()))
    print(f"{path.name} vs torch ({len(inputs)} inputs, T {CHECK_FRAMES}): max |diff| {worst:.2e}")
    if worst > MAX_EXPORT_DIFF:
        raise SystemExit(f"{path.name} does not match the wheel's decoder in torch")
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=export.default_cache_dir())
    parser.add_argument("--out-dir", type=Path, default=MODELS / "onnx")
    args = parser.parse_args(argv)

    torch: Any = importlib.import_module("torch")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = fetch(args.cache_dir)
    check_front_end_constants(root)
    decoder = build_decoder(torch, root)
    wrapped = traceable(torch, decoder)
    check_traceable(torch, decoder, wrapped)

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ONNX_FILE
    export_onnx(torch, wrapped, out)
    with tempfile.TemporaryDirectory() as tmp:
        again = Path(tmp) / ONNX_FILE
        export_onnx(torch, wrapped, again)
        if again.read_bytes() != out.read_bytes():
            raise SystemExit("two exports gave different bytes: the pin would not be reproducible")
    print(f"{ONNX_FILE}: {out.stat().st_size:,} bytes, identical on a second export")
    check_against_torch(torch, decoder, out)
    export.write_sha256sums(out_dir, [ONNX_FILE])


if __name__ == "__main__":
    main()
