"""Intake's copy of the notifier's delivery log (CallbackAttempted events), per batch."""

from __future__ import annotations

from typing import Any

from contracts import events as ev
from services.common.db import Conn

GROUP = "intake-callbacks"


async def on_attempt(conn: Conn, event: ev.Event) -> None:
    if not isinstance(event, ev.CallbackAttempted):
        return
    await conn.execute(
        "INSERT INTO callback_attempts (webhook_id, attempt, team_id, batch_id, url, outcome,"
        "  status_code, error, next_attempt_at, attempted_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        event.webhook_id, event.attempt, event.team_id, event.batch_id, event.url,
        event.outcome, event.status_code, event.error, event.next_attempt_at, event.occurred_at,
    )  # fmt: skip


async def attempts(conn: Conn, team_id: str, batch_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM callback_attempts WHERE team_id = $1 AND batch_id = $2"
        " ORDER BY webhook_id, attempt",
        team_id,
        batch_id,
    )
    return [dict(r) for r in rows]
