"""The outbox relay against real Kafka and PostgreSQL: nothing lost, order kept per key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import defaultdict

import pytest

from contracts import events as ev
from contracts import headers as h
from contracts.ids import new_id
from services.common import outbox
from services.common.db import Pool
from tests.conftest import TopicFactory
from tests.support.infra import REPO, Infra
from tests.support.kafka import collect, wait_until

pytestmark = pytest.mark.infra

EVENTS = 3000
KEYS = 30


def _event(key: str, seq: int) -> ev.BatchAbandoned:
    return ev.BatchAbandoned(team_id=new_id(), correlation_id=key, batch_id=key, reason=str(seq))


async def _start_relay(infra: Infra, schema: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.common.relay_cli",
        "--schema", schema,
        "--database-url", infra.database_url,
        "--bootstrap", infra.kafka_bootstrap,
        "--batch-size", "50",
        cwd=REPO,
        env={**os.environ, "VERITY_LOG_LEVEL": "WARNING"},
    )  # fmt: skip


async def _pending(pool: Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))


async def test_relay_killed_mid_stream_loses_nothing(
    infra: Infra, schema_pool: tuple[str, Pool], new_topic: TopicFactory
) -> None:
    schema, pool = schema_pool
    topic = await new_topic("outbox", partitions=3)
    keys = [new_id() for _ in range(KEYS)]
    sent: dict[str, list[str]] = defaultdict(list)  # key -> event ids in enqueue order
    async with pool.acquire() as conn:
        for start in range(0, EVENTS, 100):
            batch = [_event(keys[i % KEYS], i) for i in range(start, start + 100)]
            async with conn.transaction():
                await outbox.enqueue(conn, batch, route=lambda e: (topic, e.correlation_id))
            for e in batch:
                sent[e.correlation_id].append(e.event_id)

    async with collect(infra.kafka_bootstrap, topic) as seen:
        relay = await _start_relay(infra, schema)
        await wait_until(lambda: len(seen.records) >= EVENTS // 3, what="relay made progress")
        relay.send_signal(signal.SIGKILL)  # no chance to finish its batch or clean up
        await relay.wait()
        left = await _pending(pool)
        assert 0 < left < EVENTS, "the kill must land mid-stream for this test to mean anything"

        relay = await _start_relay(infra, schema)
        try:
            await wait_until(
                lambda: len({r.value for r in seen.records}) >= EVENTS, what="all delivered"
            )
            async with asyncio.timeout(30):
                while await _pending(pool):
                    await asyncio.sleep(0.1)
        finally:
            relay.send_signal(signal.SIGTERM)
            assert await relay.wait() == 0

    # Dedupe by event id, as every consumer does; keep each key's first-seen order.
    first_seen: dict[str, list[str]] = defaultdict(list)
    unique: set[str] = set()
    for record in seen.records:
        event_id = dict(record.headers)[h.EVENT_ID].decode()
        event = ev.decode_event(record.value)
        assert event.event_id == event_id
        assert record.key.decode() == event.correlation_id
        if event_id not in unique:
            unique.add(event_id)
            first_seen[event.correlation_id].append(event_id)
    assert unique == {i for ids in sent.values() for i in ids}
    assert first_seen == sent, "per-key order must survive the crash"
    assert len(seen.records) - EVENTS == len(seen.records) - len(unique)


async def test_relay_publishes_on_notify_and_carries_trace_context(
    infra: Infra, schema_pool: tuple[str, Pool], new_topic: TopicFactory
) -> None:
    from opentelemetry import trace

    from services.common.telemetry import setup_tracing

    setup_tracing("test", None)
    schema, pool = schema_pool
    topic = await new_topic("trace")
    producer = outbox.kafka_producer(infra.kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    # a long poll interval: only the NOTIFY can make this fast
    relay = outbox.OutboxRelay(pool, schema, producer, poll_interval=30)
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with pool.acquire() as conn, conn.transaction():
                await outbox.enqueue(
                    conn, [_event(new_id(), 1)], route=lambda e: (topic, e.correlation_id)
                )
        async with collect(infra.kafka_bootstrap, topic) as seen:
            await wait_until(lambda: len(seen.records) == 1, timeout=10, what="woken by NOTIFY")
            headers = seen.headers(0)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert headers[h.TRACEPARENT].split("-")[1] == trace_id
    assert headers[h.EVENT_TYPE] == "BatchAbandoned"
    assert await _pending(pool) == 0
