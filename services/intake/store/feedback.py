"""Persistence of feedback: its streams in intake's event log and the `detect_feedback` model.

`FeedbackProjection.apply` is the only writer of `detect_feedback`, live and in `rebuild`
alike (store/batches.py routes feedback events here). `export` reads it for retraining.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from contracts.events import TOLERANT
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.intake.domain import feedback as domain
from services.intake.store.streams import decide_and_record


def decode(payload: Mapping[str, Any]) -> domain.FeedbackEvent:
    event: domain.FeedbackEvent = domain.FEEDBACK_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


FEEDBACK_EVENTS: EventStore[domain.FeedbackEvent] = EventStore(decode)
EVENT_TYPES = frozenset(t.model_fields["event_type"].default for t in domain.FEEDBACK_EVENT_TYPES)


async def execute(conn: Conn, command: domain.Command) -> bool:
    """Decide and record `command` in `conn`'s transaction; False when it changed nothing."""
    _, events = await decide_and_record(
        conn, FEEDBACK_EVENTS, domain.stream_id(command.detect_id, command.token_id),
        domain.replay, lambda state: domain.decide(state, command), PROJECTION.apply,
    )  # fmt: skip
    return bool(events)


class FeedbackProjection:
    tables: tuple[str, ...] = ("detect_feedback",)

    async def apply(self, conn: Conn, recorded: Recorded[domain.FeedbackEvent]) -> None:
        e = recorded.event
        match e:
            case domain.FeedbackGiven():
                s = e.snapshot
                await conn.execute(
                    "INSERT INTO detect_feedback (detect_id, token_id, team_id, type, vote,"
                    "  verdict, score, media_type, metrics, comment, source, created_at,"
                    "  updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)"
                    " ON CONFLICT (detect_id, token_id) DO UPDATE SET type = $4, vote = $5,"
                    "  verdict = $6, score = $7, media_type = $8, metrics = $9, comment = $10,"
                    "  source = $11, updated_at = $12",
                    e.detect_id, e.token_id, e.team_id, e.type, domain.vote(e.type), s.verdict,
                    s.score, s.media_type, s.metrics, e.comment, e.source, e.occurred_at,
                )  # fmt: skip
            case domain.FeedbackRetracted():
                await conn.execute(
                    "DELETE FROM detect_feedback WHERE detect_id = $1 AND token_id = $2",
                    e.detect_id, e.token_id,
                )  # fmt: skip


PROJECTION = FeedbackProjection()


async def mine(conn: Conn, team_id: str, detect_id: str, token_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM detect_feedback WHERE team_id = $1 AND detect_id = $2 AND token_id = $3",
        team_id, detect_id, token_id,
    )  # fmt: skip


async def page(conn: Conn, team_id: str, number: int, size: int) -> tuple[list[Any], int]:
    """The team's feedback, every token's, newest answer first."""
    total = await conn.fetchval("SELECT count(*) FROM detect_feedback WHERE team_id = $1", team_id)
    rows = await conn.fetch(
        "SELECT * FROM detect_feedback WHERE team_id = $1"
        " ORDER BY updated_at DESC, detect_id, token_id LIMIT $2 OFFSET $3",
        team_id, size, (number - 1) * size,
    )  # fmt: skip
    return list(rows), int(total)


async def export(conn: Conn, team_id: str | None) -> AsyncIterator[dict[str, Any]]:
    """Every answer with what a retraining run needs: the label it gives, the model's snapshot,
    and, while the detect still exists, its filename and the model that scored it."""
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT f.*, d.filename, d.result->'model' AS model FROM detect_feedback f"
            " LEFT JOIN detects d ON d.detect_id = f.detect_id"
            " WHERE $1::text IS NULL OR f.team_id = $1 ORDER BY f.updated_at, f.detect_id",
            team_id,
        )
        async for row in cursor:
            yield dict(row)
