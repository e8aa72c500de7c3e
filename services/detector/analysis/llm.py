"""An operator's OpenAI-compatible chat endpoint: `use_llm` commentary and detect questions.

Configured with VERITY_LLM_URL (the API base, e.g. `http://llm.internal/v1`), VERITY_LLM_MODEL
and, if needed, VERITY_LLM_API_KEY, read in the worker process. The model sees the result's
numbers (not the media) and is asked for a short plain-language reading of them; what it says
is reported as its opinion, next to the measured numbers, and never changes a score or label.
Unconfigured, failing or slow (VERITY_LLM_TIMEOUT_SECONDS, 20 s): the report says so and the
detect completes all the same. A question about a detect (Resemble's
/detects/{uuid}/intelligence) is answered the same way, from the same numbers, or fails with
the reason (`LlmUnavailable`).
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


QUESTION_INSTRUCTIONS = (
    "You help a trust-and-safety analyst with the output of a synthetic-media detector. You get "
    "its JSON result (scores are probabilities that the media is synthetic, with each model's "
    "threshold) and the analyst's question. Answer in at most five sentences from the JSON "
    "only; if the JSON cannot answer it, say so. Never invent evidence."
)


class LlmUnavailable(Exception):  # noqa: N818 - a state, not a failure of ours
    """No answer: `code` (llm_unconfigured, llm_failed) and a message fit for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unavailable(reason: str) -> dict[str, JsonValue]:
    return {"available": False, "reason": reason}


def _shown(result: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """What the model may see of a result: the numbers, never voiceprints or earlier LLM text."""
    shown = {key: result.get(key) for key in SHOWN}
    intelligence = result.get("intelligence")
    if isinstance(intelligence, dict):
        shown["intelligence"] = {k: v for k, v in intelligence.items() if k != "llm"}
    return shown


def _chat(instructions: str, content: str) -> tuple[str, str]:
    """(the model's reply, the model's name), or LlmUnavailable."""
    base = os.environ.get("VERITY_LLM_URL", "").rstrip("/")
    model = os.environ.get("VERITY_LLM_MODEL", "")
    if not base or not model:
        raise LlmUnavailable(
            "llm_unconfigured", "no LLM endpoint is configured (VERITY_LLM_URL, VERITY_LLM_MODEL)"
        )
    key = os.environ.get("VERITY_LLM_API_KEY")
    try:
        response = httpx.post(
            f"{base}/chat/completions",
            json={
                "model": model,
                "messages": [
                    {"role": "system", "content": instructions},
                    {"role": "user", "content": content},
                ],
                "temperature": 0,
            },
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=float(os.environ.get("VERITY_LLM_TIMEOUT_SECONDS", "20")),
        )
        response.raise_for_status()
        text = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        message = f"the LLM endpoint did not answer usefully: {type(exc).__name__}"
        raise LlmUnavailable("llm_failed", message) from exc
    return str(text).strip(), model


def commentary(result: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    try:
        text, model = _chat(INSTRUCTIONS, json.dumps(_shown(result)))
    except LlmUnavailable as exc:
        return _unavailable(exc.message)
    return {"available": True, "model": model, "summary": text}


def answer(query: str, result: Mapping[str, JsonValue]) -> tuple[str, str]:
    """(answer, model) to the analyst's question about one result, or LlmUnavailable."""
    content = json.dumps({"question": query, "result": _shown(result)})
    return _chat(QUESTION_INSTRUCTIONS, content)
