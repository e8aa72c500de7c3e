"""Checks a freshly built image from the inside, before build.sh commits it.

build.sh pipes this file into `python - SERVICE` in the image, running as the service's user
(10001), so every check sees what the running service will see. Standard library only: it runs
on the image's interpreter with the image's venv. Exits non-zero with the reasons on failure.

- the interpreter is the image's /usr/bin/python3.11, in the venv /app/.venv, as uid/gid 10001;
- the service's app module imports, and its operator CLI ([project.scripts]) is on PATH;
- intake, wallet and notifier carry no ML stack (FORBIDDEN is not importable there);
- every shared library in the venv resolves (ldd), so no Debian runtime package is missing;
- the user can write nowhere on the image's filesystem except /tmp, and owns nothing;
- the detector loads every model it serves (warm_up) and transcribes a second of silence.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

UID = GID = 10001
VENV = "/app/.venv"
FORBIDDEN = ("onnxruntime", "cv2", "faster_whisper", "ctranslate2", "torch")
WRITABLE_ALLOWED = {"/tmp"}


def interpreter() -> list[str]:
    problems = []
    if (os.getuid(), os.getgid()) != (UID, GID):
        problems.append(f"runs as {os.getuid()}:{os.getgid()}, not {UID}:{GID}")
    if sys.prefix != VENV:
        problems.append(f"sys.prefix is {sys.prefix}, not {VENV}")
    real = os.path.realpath(sys.executable)
    if not real.startswith("/usr/bin/python3.11") or sys.version_info[:2] != (3, 11):
        problems.append(f"interpreter {real} {sys.version.split()[0]}, not the image's 3.11")
    return problems


def imports(service: str) -> list[str]:
    try:
        importlib.import_module(f"services.{service}.app")
    except Exception as exc:  # any failure to import is the finding
        return [f"import services.{service}.app: {type(exc).__name__}: {exc}"]
    return []


def scripts(service: str) -> list[str]:
    with open("/app/pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"].get("scripts", {})
    problems = []
    for name, target in declared.items():
        if target.split(".")[:2] != ["services", service]:
            continue
        if shutil.which(name) != f"{VENV}/bin/{name}":
            problems.append(f"{name} is not on PATH")
        elif subprocess.run([name, "--help"], capture_output=True).returncode != 0:
            problems.append(f"{name} --help fails")
    return problems


def no_ml_stack(service: str) -> list[str]:
    if service == "detector":
        return []
    found = [name for name in FORBIDDEN if importlib.util.find_spec(name) is not None]
    return [f"{service} must not contain {', '.join(found)}"] if found else []


def libraries() -> list[str]:
    problems = []
    for path in sorted(Path(VENV).rglob("*.so*")):
        if not path.is_file() or path.is_symlink():
            continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
        if missing:
            problems.append(f"{path}: missing {', '.join(missing)}")
    return problems


def writable() -> list[str]:
    """Paths on the image's own filesystem the user could change (mounts are skipped)."""
    root_dev = os.lstat("/").st_dev
    problems = []
    for top, dirs, files in os.walk("/"):
        kept = []
        for name in dirs:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if st.st_dev != root_dev:  # /proc, /sys, /dev, bind mounts: not the image's
                continue
            if path not in WRITABLE_ALLOWED:
                kept.append(name)
            problems += _check(path, st)
        dirs[:] = kept
        for name in files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if st.st_dev == root_dev:
                problems += _check(path, st)
    return problems


def _check(path: str, st: os.stat_result) -> list[str]:
    if stat.S_ISLNK(st.st_mode) or path in WRITABLE_ALLOWED:
        return []
    if st.st_uid == UID or st.st_gid == GID:
        return [f"{path} is owned by {st.st_uid}:{st.st_gid}"]
    if os.access(path, os.W_OK, follow_symlinks=False):
        return [f"{path} is writable by uid {UID}"]
    return []


def detector_models(service: str) -> list[str]:
    if service != "detector":
        return []
    import numpy as np

    from services.detector.models import loaded, transcripts

    report = loaded.warm_up()
    problems = [f"model {name}: {state}" for name, state in report.items() if state != "loaded"]
    try:
        transcripts.transcribe(np.zeros(16000, dtype=np.float32))
    except Exception as exc:  # any failure to run Whisper is the finding
        problems.append(f"whisper: {type(exc).__name__}: {exc}")
    return problems


def main() -> None:
    service = sys.argv[1]
    checks = (
        interpreter(),
        imports(service),
        scripts(service),
        no_ml_stack(service),
        libraries(),
        writable(),
        detector_models(service),
    )
    problems = [problem for found in checks for problem in found]
    for problem in problems:
        print(f"verify: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"verify: {service} image ok")


if __name__ == "__main__":
    main()
