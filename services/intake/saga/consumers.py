"""Intake's Kafka edge: the wallet's decisions and the detector's results move batches on.

| event                        | command      | group           |
|------------------------------|--------------|-----------------|
| FundsReserved / FundsRejected | RecordFunds  | intake-saga     |
| DetectCompleted / DetectFailed | RecordResult | intake-results  |
| VoiceprintComputed / Failed  | RecordVoiceprint (identity) or an answer row (search) | ... |
| DetectQuestionAnswered / Failed | RecordAnswer (question) | intake-questions |

(... = intake-voiceprints.)

Any intake replica may record a decision; the request waiting for it wakes through
LISTEN/NOTIFY (progress.py). A decision for a batch this intake never opened, a late or a
repeated one changes nothing (domain.decide).
"""

from __future__ import annotations

from pydantic import JsonValue

from contracts import events as ev
from services.common.consumer import Effect
from services.common.db import Conn
from services.intake.domain import matching
from services.intake.domain.batch import RecordFunds, RecordResult
from services.intake.domain.identity import RecordVoiceprint
from services.intake.domain.question import RecordAnswer
from services.intake.saga.commands import Batches
from services.intake.store import questions
from services.intake.store.identities import Identities, record_answer, saved_voiceprints

FUNDS_GROUP = "intake-saga"
RESULTS_GROUP = "intake-results"
VOICEPRINTS_GROUP = "intake-voiceprints"
QUESTIONS_GROUP = "intake-questions"
DETECT_MATCHES = 5  # identity_matches on a detect: the nearest five saved identities


def on_funds(batches: Batches) -> Effect:
    async def effect(conn: Conn, event: ev.Event) -> None:
        if isinstance(event, ev.FundsReserved | ev.FundsRejected):
            await batches.execute(conn, event.batch_id, RecordFunds(decision=event))

    return effect


def on_result(batches: Batches) -> Effect:
    async def effect(conn: Conn, event: ev.Event) -> None:
        if isinstance(event, ev.DetectCompleted):
            event = await with_identity_matches(conn, event)
        if isinstance(event, ev.DetectCompleted | ev.DetectFailed):
            recorded, _ = await batches.execute(conn, event.batch_id, RecordResult(result=event))
            if not recorded and isinstance(event, ev.DetectCompleted):
                await _drop_unused_picture(conn, batches, event)

    return effect


async def _drop_unused_picture(conn: Conn, batches: Batches, event: ev.DetectCompleted) -> None:
    """A result that came too late (its detect was cancelled) leaves no PNG behind; a repeated
    delivery of the recorded result keeps the one its detect shows."""
    picture = event.result.get("visualization")
    key = picture.get("blob_key") if isinstance(picture, dict) else None
    if not isinstance(key, str):
        return
    shown = await conn.fetchval(
        "SELECT result->'visualization'->>'blob_key' FROM detects WHERE detect_id = $1",
        event.detect_id,
    )
    if shown != key:
        await batches.blobs.delete(key)


async def with_identity_matches(conn: Conn, event: ev.DetectCompleted) -> ev.DetectCompleted:
    """The result as intake records it: the detector's voiceprint (asked for by
    `search_identity`) replaced by the nearest saved identities of the team at this moment.
    Recording the matches, not the voiceprint, keeps rebuilt read models identical."""
    if "voiceprint" not in event.result:
        return event
    result = dict(event.result)
    found = result.pop("voiceprint")
    matches: JsonValue = None
    if isinstance(found, dict) and isinstance(found.get("embedding"), list):
        saved = await saved_voiceprints(conn, event.team_id)
        same_speaker = found["same_speaker"]
        assert isinstance(same_speaker, dict)
        query = [float(v) for v in found["embedding"]]  # type: ignore[union-attr,arg-type]
        matches = matching.nearest(query, saved, same_speaker, DETECT_MATCHES)
    result["identity_matches"] = matches
    return event.model_copy(update={"result": result})


def on_voiceprint(identities: Identities) -> Effect:
    async def effect(conn: Conn, event: ev.Event) -> None:
        if not isinstance(event, ev.VoiceprintComputed | ev.VoiceprintFailed):
            return
        if event.purpose == "identity":
            await identities.execute(conn, event.request_id, RecordVoiceprint(result=event))
        else:
            await record_answer(conn, event)

    return effect


async def on_answer(conn: Conn, event: ev.Event) -> None:
    """The detector's answer to a question (the questions topic also carries the questions)."""
    if isinstance(event, ev.DetectQuestionAnswered | ev.DetectQuestionFailed):
        await questions.execute(conn, event.question_id, RecordAnswer(answer=event))
