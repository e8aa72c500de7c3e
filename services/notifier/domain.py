"""A callback delivery: pure `decide` and `evolve`, no I/O.

One delivery per batch (its `webhook_id` is derived from the batch id, so a duplicated
BatchTerminal cannot schedule a second one). Attempts repeat with exponential backoff and
jitter until a 2xx, a 410 Gone (the receiver asks us to stop), a refused target, or the
retry horizon (24 h by default) runs out.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.events import Frozen
from contracts.ids import Id, UtcDatetime
from services.common.eventstore import DomainEvent

_WEBHOOK_NAMESPACE = uuid.UUID("0b6a7f0e-8f55-4e8f-9d1c-3c1f1b5e2a77")


def webhook_id_for(batch_id: str) -> str:
    """The Standard Webhooks message id of a batch's callback: stable across retries."""
    return "msg_" + uuid.uuid5(_WEBHOOK_NAMESPACE, batch_id).hex


class RetryPolicy(Frozen):
    first_delay_seconds: float = Field(default=5.0, gt=0)
    max_delay_seconds: float = Field(default=3600.0, gt=0)
    horizon_seconds: float = Field(default=86_400.0, gt=0)

    def delay(self, attempt: int, jitter: float) -> timedelta:
        """Backoff after attempt `attempt` (1-based); `jitter` in [0, 1) spreads retries."""
        base = min(self.max_delay_seconds, self.first_delay_seconds * 2 ** (attempt - 1))
        return timedelta(seconds=base * (0.5 + 0.5 * jitter))


# --- events ------------------------------------------------------------------------------------


class DeliveryEvent(DomainEvent):
    webhook_id: str


class DeliveryRequested(DeliveryEvent):
    event_type: Literal["DeliveryRequested"] = "DeliveryRequested"
    team_id: Id
    batch_id: Id
    url: str
    payload: str  # the exact JSON text POSTed on every attempt


class AttemptFailed(DeliveryEvent):
    event_type: Literal["AttemptFailed"] = "AttemptFailed"
    attempt: int
    status_code: int | None
    error: str
    next_attempt_at: UtcDatetime


class Delivered(DeliveryEvent):
    event_type: Literal["Delivered"] = "Delivered"
    attempt: int
    status_code: int


class DeliveryAbandoned(DeliveryEvent):
    event_type: Literal["DeliveryAbandoned"] = "DeliveryAbandoned"
    attempt: int
    reason: Literal["gone", "expired", "refused"]
    status_code: int | None
    error: str


AnyDeliveryEvent = Annotated[
    DeliveryRequested | AttemptFailed | Delivered | DeliveryAbandoned,
    Field(discriminator="event_type"),
]
DELIVERY_EVENTS: TypeAdapter[AnyDeliveryEvent] = TypeAdapter(AnyDeliveryEvent)


# --- state and commands ------------------------------------------------------------------------

Status = Literal["pending", "delivered", "abandoned"]


class Delivery(Frozen):
    webhook_id: str
    team_id: Id
    batch_id: Id
    url: str
    payload: str
    created_at: datetime
    status: Status = "pending"
    attempts: int = 0
    next_attempt_at: datetime
    version: int = 1


class Request(Frozen):
    team_id: Id
    batch_id: Id
    url: str
    payload: str


class Outcome(Frozen):
    """What one attempt observed. `refused`: the target failed the SSRF check at send time."""

    status_code: int | None = None
    error: str | None = None
    refused: bool = False


class RecordAttempt(Frozen):
    outcome: Outcome
    at: datetime
    jitter: float = Field(ge=0, lt=1)


def decide(
    delivery: Delivery | None, command: Request | RecordAttempt, policy: RetryPolicy
) -> list[DeliveryEvent]:
    match command:
        case Request():
            if delivery is not None:
                return []  # one delivery per batch, however often it is requested
            return [
                DeliveryRequested(
                    webhook_id=webhook_id_for(command.batch_id),
                    team_id=command.team_id,
                    batch_id=command.batch_id,
                    url=command.url,
                    payload=command.payload,
                )
            ]
        case RecordAttempt(outcome=outcome, at=at, jitter=jitter):
            if delivery is None or delivery.status != "pending":
                return []  # a late result of a lost lease: the delivery already ended
            attempt = delivery.attempts + 1
            wid = delivery.webhook_id
            code = outcome.status_code
            if code is not None and 200 <= code < 300:
                return [Delivered(webhook_id=wid, attempt=attempt, status_code=code)]
            error = outcome.error or f"HTTP {code}"
            if outcome.refused:
                return [_abandon(wid, attempt, "refused", code, error)]
            if code == 410:
                return [_abandon(wid, attempt, "gone", code, "receiver answered 410 Gone")]
            next_at = at + policy.delay(attempt, jitter)
            if next_at > delivery.created_at + timedelta(seconds=policy.horizon_seconds):
                return [_abandon(wid, attempt, "expired", code, error)]
            return [
                AttemptFailed(
                    webhook_id=wid,
                    attempt=attempt,
                    status_code=code,
                    error=error,
                    next_attempt_at=next_at,
                )
            ]
    raise AssertionError(f"unknown command {command!r}")  # pragma: no cover


def _abandon(
    webhook_id: str,
    attempt: int,
    reason: Literal["gone", "expired", "refused"],
    code: int | None,
    error: str,
) -> DeliveryAbandoned:
    return DeliveryAbandoned(
        webhook_id=webhook_id, attempt=attempt, reason=reason, status_code=code, error=error
    )


def evolve(delivery: Delivery | None, event: DeliveryEvent) -> Delivery:
    if isinstance(event, DeliveryRequested):
        return Delivery(
            webhook_id=event.webhook_id,
            team_id=event.team_id,
            batch_id=event.batch_id,
            url=event.url,
            payload=event.payload,
            created_at=event.occurred_at,
            next_attempt_at=event.occurred_at,
        )
    assert delivery is not None, f"{event.event_type} before DeliveryRequested"
    version = delivery.version + 1
    match event:
        case AttemptFailed(attempt=attempt, next_attempt_at=next_at):
            update: dict[str, object] = {"attempts": attempt, "next_attempt_at": next_at}
        case Delivered(attempt=attempt):
            update = {"attempts": attempt, "status": "delivered"}
        case DeliveryAbandoned(attempt=attempt):
            update = {"attempts": attempt, "status": "abandoned"}
        case _:  # pragma: no cover
            raise AssertionError(f"unknown event {event!r}")
    return delivery.model_copy(update={**update, "version": version})
