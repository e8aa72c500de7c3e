"""Consumers against real Kafka + PostgreSQL: inbox dedupe, bounded retries, dead letters."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from contracts import events as ev
from contracts import headers as h
from contracts.ids import new_id
from contracts.topics import dead_letter_topic
from services.common import inbox
from services.common.consumer import RetryPolicy, make_broker, subscribe, with_inbox
from services.common.db import Conn, Pool
from services.common.telemetry import setup_tracing
from tests.conftest import TopicFactory
from tests.support.infra import Infra
from tests.support.kafka import collect, committed_offset, wait_caught_up, wait_until

pytestmark = pytest.mark.infra


def _event(batch: str, reason: str = "x") -> ev.BatchAbandoned:
    return ev.BatchAbandoned(team_id=new_id(), correlation_id=batch, batch_id=batch, reason=reason)


async def test_inbox_claim_is_once_per_group(schema_pool: tuple[str, Pool]) -> None:
    _, pool = schema_pool
    event_id = new_id()

    async def claim(group: str) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await inbox.claim(conn, group, event_id)

    outcomes = await asyncio.gather(claim("g1"), claim("g1"), claim("g1"))
    assert sorted(outcomes) == [False, False, True]
    assert await claim("g2") is True  # another group processes it independently


async def test_redelivered_event_is_a_no_op(
    infra: Infra,
    schema_pool: tuple[str, Pool],
    new_topic: TopicFactory,
    producer: AIOKafkaProducer,
) -> None:
    _, pool = schema_pool
    topic = await new_topic("inbox")
    group = f"g-{new_id()[:8]}"
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (batch_id text, reason text)")

    async def effect(conn: Conn, event: ev.Event) -> None:
        assert isinstance(event, ev.BatchAbandoned)
        await conn.execute("INSERT INTO effects VALUES ($1, $2)", event.batch_id, event.reason)

    calls: list[str] = []
    handler = with_inbox(pool, group, effect)

    async def counted(event: ev.Event) -> None:
        calls.append(event.event_id)
        await handler(event)

    broker = make_broker(infra.kafka_bootstrap, client_id="test-inbox")
    subscribe(broker, (topic,), group, counted)
    first, second = _event(new_id(), "first"), _event(new_id(), "second")
    for event in (first, first, second, first):  # at-least-once delivery, duplicated
        await producer.send_and_wait(topic, ev.encode_event(event), key=b"k")
    await broker.start()
    try:
        await wait_until(lambda: len(calls) == 4, what="all four deliveries handled")
        await wait_caught_up(infra.kafka_bootstrap, group, (topic,))  # commits are coalesced
    finally:
        await broker.stop()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT reason FROM effects ORDER BY reason")
        marks = await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = $1", group)
    assert [r["reason"] for r in rows] == ["first", "second"]
    assert marks == 2
    assert await committed_offset(infra.kafka_bootstrap, group, topic) == 4  # after stop too


async def test_failed_effect_rolls_back_with_its_inbox_mark(
    infra: Infra, schema_pool: tuple[str, Pool]
) -> None:
    _, pool = schema_pool
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (n int)")
    attempts = 0

    async def flaky(conn: Conn, event: ev.Event) -> None:
        nonlocal attempts
        attempts += 1
        await conn.execute("INSERT INTO effects VALUES ($1)", attempts)
        if attempts == 1:
            raise RuntimeError("database hiccup after a partial write")

    handler = with_inbox(pool, "g", flaky)
    event = _event(new_id())
    with pytest.raises(RuntimeError):
        await handler(event)
    await handler(event)  # the retry is not mistaken for a duplicate
    await handler(event)  # a real duplicate is
    async with pool.acquire() as conn:
        assert [r["n"] for r in await conn.fetch("SELECT n FROM effects")] == [2]
    assert attempts == 2


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    infra: Infra, new_topic: TopicFactory, producer: AIOKafkaProducer
) -> None:
    topic = await new_topic("dlq")
    group = f"g-{new_id()[:8]}"
    dlq = dead_letter_topic(group)
    handled: list[str] = []
    attempts: dict[str, int] = {}
    doomed = _event(new_id(), "always fails")

    async def handler(event: ev.Event) -> None:
        attempts[event.event_id] = attempts.get(event.event_id, 0) + 1
        if event.event_id == doomed.event_id:
            raise ValueError("this event can never be processed")
        handled.append(event.event_id)

    before, after = _event(new_id(), "before"), _event(new_id(), "after")
    for payload in (
        ev.encode_event(before),
        b"{not json at all",
        ev.encode_event(doomed),
        ev.encode_event(after),
    ):
        await producer.send_and_wait(topic, payload, key=b"same-partition")

    broker = make_broker(infra.kafka_bootstrap, client_id="test-dlq")
    subscribe(broker, (topic,), group, handler, retry=RetryPolicy(attempts=3, first_backoff=0.01))
    async with collect(infra.kafka_bootstrap, dlq) as dead:
        await broker.start()
        try:
            await wait_until(lambda: len(handled) == 2 and len(dead.records) == 2)
            await wait_caught_up(infra.kafka_bootstrap, group, (topic,))
        finally:
            await broker.stop()
        reasons = [dead.headers(i) for i in range(2)]
    assert handled == [before.event_id, after.event_id]  # processing went on past the poison
    assert attempts[doomed.event_id] == 3  # bounded retries
    assert dead.records[0].value == b"{not json at all"
    assert reasons[0][h.DLQ_REASON] == "undecodable"
    assert reasons[0][h.DLQ_SOURCE_OFFSET] == "1"
    assert reasons[1][h.DLQ_REASON] == "handler-failed"
    assert reasons[1][h.DLQ_SOURCE_OFFSET] == "2"
    assert reasons[1][h.DLQ_ATTEMPTS] == "3"
    assert "never be processed" in reasons[1][h.DLQ_ERROR]
    assert ev.decode_event(dead.records[1].value) == doomed
    assert await committed_offset(infra.kafka_bootstrap, group, topic) == 4  # after stop too


async def test_an_event_from_a_newer_producer_is_handled_not_dead_lettered(
    infra: Infra, new_topic: TopicFactory, producer: AIOKafkaProducer
) -> None:
    """During a rolling deploy the new release's events, with fields this release does not
    know (top level and nested), reach the old consumers: they must be processed."""
    topic = await new_topic("newer")
    group = f"g-{new_id()[:8]}"
    batch = new_id()
    known = ev.DetectFailed(
        team_id=new_id(), correlation_id=batch, batch_id=batch, detect_id=new_id(),
        error_code="unreadable", error_message="not a WAV file",
    )  # fmt: skip
    newer = json.loads(ev.encode_event(known))
    newer |= {"schema_version": 2, "retryable": False, "hints": {"codec": "opus"}}
    handled: list[ev.Event] = []

    async def handler(event: ev.Event) -> None:
        handled.append(event)

    await producer.send_and_wait(topic, json.dumps(newer).encode(), key=batch.encode())
    broker = make_broker(infra.kafka_bootstrap, client_id="test-newer")
    subscribe(broker, (topic,), group, handler, retry=RetryPolicy(attempts=1))
    async with collect(infra.kafka_bootstrap, dead_letter_topic(group)) as dead:
        await broker.start()
        try:
            await wait_until(lambda: len(handled) == 1, what="the newer event was handled")
            await wait_caught_up(infra.kafka_bootstrap, group, (topic,))
        finally:
            await broker.stop()
        assert dead.records == []
    assert handled == [known.model_copy(update={"schema_version": 2})]


async def test_unavailable_dead_letter_topic_means_no_commit(
    infra: Infra, new_topic: TopicFactory, producer: AIOKafkaProducer
) -> None:
    """If the dead letter cannot be written, the message stays uncommitted and comes back."""
    topic = await new_topic("nodlq")
    group = f"g-{new_id()[:8]}"
    # a dead-letter topic that refuses every message: the broker rejects it as too large
    await new_topic(name=dead_letter_topic(group), config={"max.message.bytes": "64"})
    seen: list[str] = []

    async def handler(event: ev.Event) -> None:
        seen.append(event.event_id)
        raise ValueError("fails")

    await producer.send_and_wait(topic, ev.encode_event(_event(new_id())), key=b"k")
    broker = make_broker(infra.kafka_bootstrap, client_id="test-nodlq")
    subscribe(broker, (topic,), group, handler, retry=RetryPolicy(attempts=1, first_backoff=0.01))
    await broker.start()
    try:
        await wait_until(lambda: len(seen) >= 2, what="redelivered after the failed DLQ publish")
    finally:
        await broker.stop()
    assert await committed_offset(infra.kafka_bootstrap, group, topic) == -1


async def test_consumer_continues_the_producers_trace(
    infra: Infra, new_topic: TopicFactory, producer: AIOKafkaProducer
) -> None:
    topic = await new_topic("trace")
    group = f"g-{new_id()[:8]}"
    trace_id = new_id()
    traceparent = f"00-{trace_id}-{new_id()[:16]}-01"
    seen: list[str] = []

    async def handler(event: ev.Event) -> None:
        context = trace.get_current_span().get_span_context()
        seen.append(format(context.trace_id, "032x"))

    setup_tracing("test", None)
    await producer.send_and_wait(
        topic,
        ev.encode_event(_event(new_id())),
        key=b"k",
        headers=[(h.TRACEPARENT, traceparent.encode())],
    )
    broker = make_broker(infra.kafka_bootstrap, client_id="test-trace")
    subscribe(broker, (topic,), group, handler)
    await broker.start()
    try:
        await wait_until(lambda: len(seen) == 1)
    finally:
        await broker.stop()
    assert seen == [trace_id]
