"""One example of every message in the AsyncAPI document, built from the models themselves.

Each example is a model instance (so it is valid by construction, and stops building the day a
field changes) with fixed ids and times (so the generated document is stable).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import events as ev
from contracts import public

AT = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
TEAM = "7d3c9a0b1e2f4a5b8c6d7e8f9a0b1c2d"
BATCH = "6f1c2a9b8d7e4f30a1b2c3d4e5f60718"
DETECT = "0a9b8c7d6e5f40312a3b4c5d6e7f8091"
REQUEST = "9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4"
EVENT = "3b2a1f0e9d8c47b6a5f4e3d2c1b0a9f8"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
URL = "https://verity.example.com/api/v2"

_FILE = ev.FileSpec(
    detect_id=DETECT, filename="call.wav", media_type="audio", size_bytes=400_044, sha256=SHA,
    blob_key=f"uploads/{BATCH}/{DETECT}", duration_seconds=12.5, analysed_seconds=12.5,
)  # fmt: skip
_LINE = ev.CostLine(
    detect_id=DETECT, filename="call.wav", media_type="audio", duration_seconds=12.5,
    cost_micros=13_000,
)  # fmt: skip
_OPTIONS = ev.DetectOptions(audio_source_tracing=True)
_RESULT: dict[str, Any] = {
    "metrics": {"label": "fake", "score": ["0.91", "0.88"], "consistency": "1.00",
                "aggregated_score": "0.90"},
    "segments": [{"start": 0.0, "end": 2.0, "score": 0.91, "label": "fake"}],
    "model": {"name": "verity-audio-lr", "version": "1", "threshold": 0.5},
    "reasons": None,
}  # fmt: skip
_SAME_SPEAKER = ev.SameSpeaker(model="campplus", slope=12.0, intercept=-5.0, threshold=0.42)


def _envelope(correlation_id: str = BATCH) -> dict[str, Any]:
    return {"event_id": EVENT, "occurred_at": AT, "team_id": TEAM, "correlation_id": correlation_id}


def internal() -> dict[type[ev.Event], ev.Event]:
    """An instance of every internal event type (contracts.events.EVENT_TYPES)."""
    batch = {**_envelope(), "batch_id": BATCH}
    detect = {**batch, "detect_id": DETECT}
    voice = {**_envelope(REQUEST), "request_id": REQUEST, "purpose": "identity"}
    question = {**_envelope(REQUEST), "question_id": REQUEST, "detect_id": DETECT}
    examples: list[ev.Event] = [
        ev.BatchRequested(**batch, files=(_FILE,), options=_OPTIONS),
        ev.FundsReserved(**batch, reserved_micros=13_000, lines=(_LINE,)),
        ev.FundsRejected(
            **batch,
            required_micros=13_000,
            available_micros=500,
            shortfall_micros=12_500,
            lines=(_LINE,),
        ),
        ev.DetectRequested(**detect, file=_FILE, options=_OPTIONS),
        ev.DetectCompleted(**detect, media_type="audio", analysed_seconds=12.5, result=_RESULT),
        ev.DetectFailed(
            **detect, error_code="unreadable", error_message="call.wav: not a readable WAV file"
        ),
        ev.BatchTerminal(
            **batch,
            status="completed",
            total_files=1,
            completed_count=1,
            failed_count=0,
            callback_url="https://hooks.example.com/verity",
            callback_payload={"success": True, "item": {"uuid": BATCH, "status": "completed"}},
        ),
        ev.BatchAbandoned(**batch, reason="the wallet did not answer within 10 s"),
        ev.LedgerEntryRecorded(
            **batch,
            entry_id=REQUEST,
            wallet_version=7,
            kind="capture",
            amount_micros=13_000,
            balance_micros=9_987_000,
            reserved_micros=0,
            available_micros=9_987_000,
            detect_id=DETECT,
            media_type="audio",
            billed_seconds=13,
        ),
        ev.CallbackAttempted(
            **batch,
            webhook_id=f"msg_{BATCH}",
            url="https://hooks.example.com/verity",
            attempt=1,
            outcome="delivered",
            status_code=204,
        ),
        ev.VoiceprintRequested(**voice, blob_key=f"identities/{REQUEST}", media_type="audio"),
        ev.VoiceprintComputed(
            **voice, embedding=(0.25,) * 8, speech_seconds=9.5, same_speaker=_SAME_SPEAKER
        ),
        ev.VoiceprintFailed(
            **voice, error_code="too_little_speech", error_message="1.2 s of speech, 3 s needed"
        ),
        ev.DetectQuestionAsked(**question, query="Why is this fake?", result=_RESULT),
        ev.DetectQuestionAnswered(
            **question, answer="The score is far above the threshold.", model="llama3"
        ),
        ev.DetectQuestionFailed(
            **question, error_code="no_llm", error_message="no LLM is configured"
        ),
    ]
    return {type(e): e for e in examples}


def detection() -> dict[str, Any]:
    """A completed audio detect, as GET /detect/{uuid} (and the public topic) show it."""
    item: dict[str, Any] = {
        "uuid": DETECT, "media_type": "audio", "status": "completed", "filename": "call.wav",
        "duration": 12.5, "analysed_seconds": 12.5, "created_at": "2026-11-24T10:30:00.000Z",
        "updated_at": "2026-11-24T10:30:04.000Z", "error_message": None,
        "metrics": _RESULT["metrics"], "segments": _RESULT["segments"], "model": _RESULT["model"],
        "reasons": None, "audio_source_tracing": None, "intelligence": None,
        "identity_matches": None, "visualize": False, "audio_source_tracing_enabled": True,
        "intelligence_enabled": False, "search_identity": False, "zero_retention_mode": False,
        "url": f"{URL}/detect/{DETECT}/media", "audio_url": f"{URL}/detect/{DETECT}/media",
        "media_deleted": False, "file_deleted_at": None, "batch_uuid": BATCH, "modality": "all",
        "face_only": False, "use_ood_detector": False, "pipeline": None, "extra_params": {},
    }  # fmt: skip
    public.Detection.checked(item)
    return item


def failed_detection() -> dict[str, Any]:
    item = detection()
    for key in ("metrics", "duration"):  # absent rather than null
        del item[key]
    item |= {
        "status": "failed", "segments": None, "model": None, "analysed_seconds": None,
        "error_message": "call.wav: not a readable WAV file",
    }  # fmt: skip
    public.Detection.checked(item)
    return item


def batch() -> dict[str, Any]:
    item: dict[str, Any] = {
        "uuid": BATCH, "status": "completed", "cancelled": False, "total_files": 1,
        "completed_count": 1, "failed_count": 0, "created_at": "2026-11-24T10:30:00.000Z",
        "updated_at": "2026-11-24T10:30:04.000Z", "finished_at": "2026-11-24T10:30:04.000Z",
        "detect_uuids": [DETECT], "settings": _OPTIONS.model_dump(mode="json"),
    }  # fmt: skip
    public.Batch.checked(item)
    return item


def cloudevent_headers(kind: public.PublicEvent, subject: str) -> dict[str, str]:
    path = "/detect/batch" if kind is public.BATCH_FINISHED else "/detect"
    return public.cloudevent_headers(
        kind, event_id=EVENT, source=f"{URL}{path}", subject=subject, time=AT,
        schema_base="https://verity.example.com/events/schemas", team_id=TEAM,
    )  # fmt: skip
