"""Downloading wheels for the offline work: which pip to run.

`uv run` puts the project's environment first on PATH, and that environment has no pip, so a
bare `python3 -m pip` there fails. The export runs in a throwaway environment made with
`--with pip`; the builders run in the project's. Both take the interpreter's own pip when it
has one, else the first pip on PATH (the system's).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys


def pip_command() -> list[str]:
    """pip of this interpreter when it has one (uv's `--with pip`), else the one on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    found = shutil.which("pip3") or shutil.which("pip")
    if found is None:
        raise SystemExit("pip is needed to download wheels: add `--with pip` to the command")
    return [found]
