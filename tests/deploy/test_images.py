"""The intake image from deploy/images/build.sh: it imports, runs as 10001 and has no ML stack.

The build uses buildah and mmdebstrap (no Docker daemon), so it needs root on a Debian host.
Where buildah cannot be installed or used (build.sh exits 3), the test is skipped, except when
CI is set: there it fails. A cold build takes a few minutes (docs/images.md); the Debian base and
the dependency layer are cached in .run/images/ and buildah's storage after that.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "images" / "build.sh"
RUN_DIR = Path(os.environ.get("VERITY_RUN_DIR", ROOT / ".run"))
IMAGE = "localhost/verity-intake:dev"
ARCHIVE = RUN_DIR / "images" / "verity-intake.oci.tar"
TOOLS_UNAVAILABLE = 3  # build.sh's exit status when buildah or mmdebstrap cannot be had
ENTRYPOINT = ["/app/.venv/bin/python", "-m", "services.intake"]
ML_STACK = ("onnxruntime", "cv2", "faster_whisper", "ctranslate2", "torch")

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: an unavailable buildah fails instead of skipping)")
    pytest.skip(reason)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def image() -> str:
    """Build the intake image (cached layers make a rebuild take well under a minute)."""
    build = subprocess.run(
        [str(BUILD), "intake"],
        cwd=ROOT,
        env={**os.environ, "VERITY_IMAGE_TAG": "dev"},
        capture_output=True,
        text=True,
        timeout=840,
    )
    if build.returncode == TOOLS_UNAVAILABLE:
        _unavailable(f"buildah is not usable here: {_tail(build.stderr, 1)}")
    assert build.returncode == 0, f"build.sh intake failed:\n{_tail(build.stderr)}"
    return IMAGE


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """A working container of the image: `buildah run` needs one, not the image itself."""
    created = subprocess.run(
        ["buildah", "from", "--quiet", "--pull=never", image],
        capture_output=True,
        text=True,
        check=True,
    )
    name = created.stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def _run(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the container as the image's configured user (no --user)."""
    return subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _config(image: str) -> dict[str, Any]:
    inspected = subprocess.run(
        ["buildah", "inspect", "--type", "image", image],
        capture_output=True,
        text=True,
        check=True,
    )
    config: dict[str, Any] = json.loads(inspected.stdout)["OCIv1"]["config"]
    return config


def test_the_service_imports_as_uid_10001(container: str) -> None:
    imported = _run(
        container,
        "python",
        "-c",
        "import os, sys, services.intake.app; print(os.getuid(), os.getgid(), sys.prefix)",
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["10001", "10001", "/app/.venv"]
    assert _run(container, "id", "-u").stdout.strip() == "10001"


def test_the_operator_cli_is_on_path(container: str) -> None:
    helped = _run(container, "verity-admin", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "usage: verity-admin" in helped.stdout


def test_the_ml_stack_is_not_in_the_image(container: str) -> None:
    onnx = _run(container, "python", "-c", "import onnxruntime")
    assert onnx.returncode != 0
    assert "ModuleNotFoundError: No module named 'onnxruntime'" in onnx.stderr
    found = _run(
        container,
        "python",
        "-c",
        f"import importlib.util as u; print([m for m in {ML_STACK!r} if u.find_spec(m)])",
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_only_what_intake_runs_is_copied_in(container: str) -> None:
    listed = _run(
        container,
        "python",
        "-c",
        "import json, os; print(json.dumps([sorted(os.listdir(d)) for d in ('/app', "
        "'/app/services')]))",
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        [".venv", "contracts", "pyproject.toml", "services", "uv.lock"],
        ["__init__.py", "__pycache__", "common", "intake"],
    ]


def test_the_image_config_runs_the_service_unprivileged(image: str) -> None:
    config = _config(image)
    assert config["Entrypoint"] == ENTRYPOINT
    user = config["User"]
    assert user == "10001:10001"
    assert user.split(":")[0] not in {"", "0", "root"}
    assert config["WorkingDir"] == "/app"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["VERITY_HTTP_HOST"] == "0.0.0.0"
    assert env["VERITY_HTTP_PORT"] == "8080"
    assert env["PATH"].startswith("/app/.venv/bin:")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "verity-intake"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if head.returncode == 0:
        assert labels["org.opencontainers.image.revision"] == head.stdout.strip()


def test_the_oci_archive_holds_the_image(image: str) -> None:
    with tarfile.open(ARCHIVE) as archive:
        assert "oci-layout" in archive.getnames()
        index_file = archive.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
    [manifest] = index["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == image
