"""`use_llm`: an operator's OpenAI-compatible chat endpoint comments on a finished analysis.

Configured with VERITY_LLM_URL (the API base, e.g. `http://llm.internal/v1`), VERITY_LLM_MODEL
and, if needed, VERITY_LLM_API_KEY, read in the worker process. The model sees the result's
numbers (not the media) and is asked for a short plain-language reading of them; what it says
is reported as its opinion, next to the measured numbers, and never changes a score or label.
Unconfigured, failing or slow (VERITY_LLM_TIMEOUT_SECONDS, 20 s): the report says so and the
detect completes all the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import httpx
from pydantic import JsonValue

INSTRUCTIONS = (
    "You help a trust-and-safety analyst read the output of a synthetic-media detector. "
    "You get its JSON result: scores are probabilities that the media is synthetic, with each "
    "model's threshold. In at most five sentences, say what the numbers show, how confident "
    "they are, and what the analyst should check next. Do not invent evidence that is not in "
    "the JSON; say so when the result is inconclusive."
)
SHOWN = ("metrics", "image_metrics", "video_metrics", "audio_source_tracing", "model", "reasons")


def _unavailable(reason: str) -> dict[str, JsonValue]:
    return {"available": False, "reason": reason}


def commentary(result: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    base = os.environ.get("VERITY_LLM_URL", "").rstrip("/")
    model = os.environ.get("VERITY_LLM_MODEL", "")
    if not base or not model:
        return _unavailable("no LLM endpoint is configured (VERITY_LLM_URL, VERITY_LLM_MODEL)")
    shown = {key: result.get(key) for key in SHOWN}
    intelligence = result.get("intelligence")
    if isinstance(intelligence, dict):
        shown["intelligence"] = {k: v for k, v in intelligence.items() if k != "llm"}
    key = os.environ.get("VERITY_LLM_API_KEY")
    try:
        response = httpx.post(
            f"{base}/chat/completions",
            json={
                "model": model,
                "messages": [
                    {"role": "system", "content": INSTRUCTIONS},
                    {"role": "user", "content": json.dumps(shown)},
                ],
                "temperature": 0,
            },
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=float(os.environ.get("VERITY_LLM_TIMEOUT_SECONDS", "20")),
        )
        response.raise_for_status()
        text = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        return _unavailable(f"the LLM endpoint did not answer usefully: {type(exc).__name__}")
    return {"available": True, "model": model, "summary": str(text).strip()}
