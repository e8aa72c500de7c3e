"""Callback delivery rules as pure decide/evolve."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.ids import new_id, utcnow
from services.notifier.domain import (
    AttemptFailed,
    Delivered,
    Delivery,
    DeliveryAbandoned,
    DeliveryEvent,
    DeliveryRequested,
    Outcome,
    RecordAttempt,
    Request,
    RetryPolicy,
    decide,
    evolve,
    webhook_id_for,
)

POLICY = RetryPolicy(first_delay_seconds=5, max_delay_seconds=60, horizon_seconds=3600)


def _requested() -> Delivery:
    batch = new_id()
    [event] = decide(None, Request(team_id=new_id(), batch_id=batch, url="https://h/x",
                                   payload="{}"), POLICY)  # fmt: skip
    assert isinstance(event, DeliveryRequested)
    assert event.webhook_id == webhook_id_for(batch)
    return evolve(None, event)


def _attempt(
    delivery: Delivery, outcome: Outcome, *, after: float = 0, jitter: float = 0.0
) -> tuple[list[DeliveryEvent], Delivery]:
    at = delivery.created_at + timedelta(seconds=after)
    events = decide(delivery, RecordAttempt(outcome=outcome, at=at, jitter=jitter), POLICY)
    for event in events:
        delivery = evolve(delivery, event)
    return events, delivery


def test_one_delivery_per_batch() -> None:
    delivery = _requested()
    again = Request(team_id=delivery.team_id, batch_id=delivery.batch_id, url="https://h/y",
                    payload="{}")  # fmt: skip
    assert decide(delivery, again, POLICY) == []


def test_failures_back_off_exponentially_with_jitter_then_succeed() -> None:
    delivery = _requested()
    delays = []
    for n in range(1, 4):
        events, delivery = _attempt(delivery, Outcome(status_code=503), after=n)
        [failed] = events
        assert isinstance(failed, AttemptFailed)
        assert failed.attempt == n
        delays.append((failed.next_attempt_at - delivery.created_at).total_seconds() - n)
    assert delays == [2.5, 5.0, 10.0]  # jitter 0 -> half of 5, 10, 20 s
    events, delivery = _attempt(delivery, Outcome(status_code=204), after=30)
    assert isinstance(events[0], Delivered)
    assert (delivery.status, delivery.attempts, delivery.version) == ("delivered", 4, 5)
    assert _attempt(delivery, Outcome(status_code=500))[0] == []  # nothing after the end


def test_jitter_spreads_and_the_delay_is_capped() -> None:
    assert POLICY.delay(1, 0.999).total_seconds() == pytest.approx(5 * 0.9995)
    assert POLICY.delay(20, 0.0).total_seconds() == 30.0  # half of the 60 s cap


def test_410_gone_stops_and_timeouts_retry() -> None:
    delivery = _requested()
    events, delivery = _attempt(delivery, Outcome(error="timed out after 10 s"))
    assert isinstance(events[0], AttemptFailed)
    assert events[0].error == "timed out after 10 s"
    events, delivery = _attempt(delivery, Outcome(status_code=410), after=10)
    assert isinstance(events[0], DeliveryAbandoned)
    assert events[0].reason == "gone"
    assert delivery.status == "abandoned"


def test_a_refused_target_is_abandoned_at_once() -> None:
    [event], _ = _attempt(_requested(), Outcome(refused=True, error="resolves to 10.0.0.1"))
    assert isinstance(event, DeliveryAbandoned)
    assert event.reason == "refused"


def test_the_horizon_ends_retries() -> None:
    delivery = _requested()
    [event], delivery = _attempt(delivery, Outcome(status_code=500), after=3598)
    assert isinstance(event, DeliveryAbandoned)
    assert event.reason == "expired"
    assert event.error == "HTTP 500"


def test_redirects_count_as_failures() -> None:
    [event], _ = _attempt(_requested(), Outcome(status_code=302))
    assert isinstance(event, AttemptFailed)


def test_timestamps_are_timezone_aware() -> None:
    assert _requested().created_at.tzinfo is not None
    assert utcnow().tzinfo is not None
