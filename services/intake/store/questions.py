"""Persistence of questions about detects: their streams and the `detect_questions` model.

`QuestionProjection.apply` is the only writer of `detect_questions`, live and in `rebuild`
alike (store/batches.py routes question events here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts import events as ev
from contracts.events import TOLERANT
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.intake.domain import question as domain
from services.intake.store.streams import decide_and_record


def decode(payload: Mapping[str, Any]) -> domain.QuestionEvent:
    event: domain.QuestionEvent = domain.QUESTION_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


QUESTION_EVENTS: EventStore[domain.QuestionEvent] = EventStore(decode)
EVENT_TYPES = frozenset(t.model_fields["event_type"].default for t in domain.QUESTION_EVENT_TYPES)


async def execute(conn: Conn, question_id: str, command: domain.Command) -> bool:
    """Decide and record `command` in `conn`'s transaction; False when it changed nothing."""
    _, events = await decide_and_record(
        conn, QUESTION_EVENTS, domain.stream_id(question_id),
        lambda recorded: domain.replay(question_id, recorded),
        lambda question: domain.decide(question, command),
        PROJECTION.apply, published=(ev.DetectQuestionAsked,),
    )  # fmt: skip
    return bool(events)


class QuestionProjection:
    tables: tuple[str, ...] = ("detect_questions",)

    async def apply(self, conn: Conn, recorded: Recorded[domain.QuestionEvent]) -> None:
        e = recorded.event
        match e:
            case ev.DetectQuestionAsked():
                await conn.execute(
                    "INSERT INTO detect_questions (question_id, team_id, detect_id, query, status,"
                    "  created_at, updated_at) VALUES ($1, $2, $3, $4, 'processing', $5, $5)",
                    e.question_id, e.team_id, e.detect_id, e.query, e.occurred_at,
                )  # fmt: skip
            case ev.DetectQuestionAnswered():
                await conn.execute(
                    "UPDATE detect_questions SET status = 'completed', answer = $2, model = $3,"
                    "  updated_at = $4 WHERE question_id = $1",
                    e.question_id, e.answer, e.model, e.occurred_at,
                )  # fmt: skip
            case ev.DetectQuestionFailed():
                await conn.execute(
                    "UPDATE detect_questions SET status = 'failed', error_code = $2,"
                    "  error_message = $3, updated_at = $4 WHERE question_id = $1",
                    e.question_id, e.error_code, e.error_message, e.occurred_at,
                )  # fmt: skip


PROJECTION = QuestionProjection()


async def question_row(conn: Conn, team_id: str, detect_id: str, question_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM detect_questions WHERE team_id = $1 AND detect_id = $2"
        " AND question_id = $3",
        team_id, detect_id, question_id,
    )  # fmt: skip
