"""`use_llm` and detect questions: unconfigured, failing and working endpoints (a local server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from services.detector.analysis import llm
from tests.support.chat_server import chat_server

RESULT: dict[str, Any] = {
    "metrics": {"label": "fake", "aggregated_score": "0.91"},
    "model": {"name": "verity-audio-lr", "threshold": 0.78},
    "intelligence": {"speech_ratio": 0.8, "llm": "must not be sent back"},
    "voiceprint": {"embedding": [0.1] * 192},
}


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with chat_server(" Likely TTS. ") as running:
        yield running


def test_unconfigured_is_reported_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERITY_LLM_URL", raising=False)
    answer = llm.commentary(RESULT)
    assert answer["available"] is False
    assert "VERITY_LLM_URL" in str(answer["reason"])


def test_a_configured_endpoint_gets_the_numbers_and_its_answer_is_reported(
    monkeypatch: pytest.MonkeyPatch, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = endpoint
    monkeypatch.setenv("VERITY_LLM_URL", url)
    monkeypatch.setenv("VERITY_LLM_MODEL", "local-model")
    monkeypatch.setenv("VERITY_LLM_API_KEY", "k")
    answer = llm.commentary(RESULT)
    assert answer == {"available": True, "model": "local-model", "summary": "Likely TTS."}
    (request,) = seen
    assert (request["path"], request["auth"], request["model"]) == (
        "/v1/chat/completions", "Bearer k", "local-model"
    )  # fmt: skip
    shown = json.loads(request["messages"][1]["content"])
    assert shown["metrics"] == RESULT["metrics"]
    assert shown["intelligence"] == {"speech_ratio": 0.8}  # its own earlier answer left out
    assert "voiceprint" not in shown  # nobody's biometric data goes to the LLM


def test_a_broken_endpoint_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITY_LLM_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("VERITY_LLM_MODEL", "m")
    answer = llm.commentary(RESULT)
    assert answer["available"] is False
    assert "did not answer" in str(answer["reason"])


def test_a_question_is_answered_from_the_numbers_or_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    monkeypatch.delenv("VERITY_LLM_URL", raising=False)
    with pytest.raises(llm.LlmUnavailable) as refused:
        llm.answer("Why fake?", RESULT)
    assert refused.value.code == "llm_unconfigured"
    url, seen = endpoint
    monkeypatch.setenv("VERITY_LLM_URL", url)
    monkeypatch.setenv("VERITY_LLM_MODEL", "local-model")
    assert llm.answer("Why fake?", RESULT) == ("Likely TTS.", "local-model")
    sent = json.loads(seen[-1]["messages"][1]["content"])
    assert sent["question"] == "Why fake?"
    assert sent["result"]["metrics"] == RESULT["metrics"]
    assert "voiceprint" not in sent["result"]
