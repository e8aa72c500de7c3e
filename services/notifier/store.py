"""Persistence of deliveries: stream per webhook id, its projections, and the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts import events as ev
from contracts.events import TOLERANT
from services.common import outbox
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.notifier.domain import (
    DELIVERY_EVENTS,
    AttemptFailed,
    Delivered,
    Delivery,
    DeliveryAbandoned,
    DeliveryEvent,
    evolve,
)
from services.notifier.schema import PROJECTION_TABLES


def _decode(payload: Mapping[str, Any]) -> DeliveryEvent:
    event: DeliveryEvent = DELIVERY_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


EVENTS: EventStore[DeliveryEvent] = EventStore(_decode)


def stream_id(webhook_id: str) -> str:
    return f"delivery-{webhook_id}"


async def load(conn: Conn, webhook_id: str) -> Delivery | None:
    state = await conn.fetchval("SELECT state FROM deliveries WHERE webhook_id = $1", webhook_id)
    return Delivery.model_validate(state) if state is not None else None


class DeliveryProjection:
    tables: tuple[str, ...] = PROJECTION_TABLES

    async def apply(self, conn: Conn, recorded: Recorded[DeliveryEvent]) -> None:
        event = recorded.event
        after = evolve(await load(conn, event.webhook_id), event)
        await conn.execute(
            "INSERT INTO deliveries (webhook_id, team_id, batch_id, url, status, attempts,"
            "  version, state, next_attempt_at, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (webhook_id) DO UPDATE SET status = excluded.status,"
            "  attempts = excluded.attempts, version = excluded.version, state = excluded.state,"
            "  next_attempt_at = excluded.next_attempt_at, leased_until = NULL",
            after.webhook_id, after.team_id, after.batch_id, after.url, after.status,
            after.attempts, after.version, after.model_dump(mode="json"), after.next_attempt_at,
            after.created_at,
        )  # fmt: skip
        attempt = _attempt_row(event)
        if attempt is not None:
            await conn.execute(
                "INSERT INTO delivery_attempts (webhook_id, attempt, outcome, status_code, error,"
                "  attempted_at) VALUES ($1, $2, $3, $4, $5, $6)",
                event.webhook_id, *attempt, event.occurred_at,
            )  # fmt: skip


def _attempt_row(
    event: DeliveryEvent,
) -> tuple[int, ev.CallbackOutcome, int | None, str | None] | None:
    match event:
        case Delivered(attempt=n, status_code=code):
            return n, "delivered", code, None
        case AttemptFailed(attempt=n, status_code=code, error=error):
            return n, "retrying", code, error
        case DeliveryAbandoned(attempt=n, status_code=code, error=error):
            return n, "abandoned", code, error
    return None


PROJECTION = DeliveryProjection()


def _published(event: DeliveryEvent, after: Delivery) -> list[ev.Event]:
    row = _attempt_row(event)
    if row is None:
        return []
    attempt, outcome, code, error = row
    return [
        ev.CallbackAttempted(
            team_id=after.team_id,
            correlation_id=after.batch_id,
            causation_id=event.event_id,
            batch_id=after.batch_id,
            webhook_id=after.webhook_id,
            url=after.url,
            attempt=attempt,
            outcome=outcome,
            status_code=code,
            error=error,
            next_attempt_at=event.next_attempt_at if isinstance(event, AttemptFailed) else None,
        )
    ]


async def record(
    conn: Conn, before: Delivery | None, webhook_id: str, events: Sequence[DeliveryEvent]
) -> Delivery | None:
    """Append after `before`'s version, project, and tell intake (for the delivery log)."""
    version = before.version if before is not None else 0
    after = before
    for r in await EVENTS.append(conn, stream_id(webhook_id), version, events):
        await PROJECTION.apply(conn, r)
        after = evolve(after, r.event)
        await outbox.enqueue(conn, _published(r.event, after))
    return after
