"""Test helpers that read Kafka directly, bypassing the code under test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import events as ev
from contracts.topics import route


async def publish(producer: AIOKafkaProducer, *events: ev.Event) -> None:
    """Put events on their contract topics as a producing service would (without its outbox)."""
    for event in events:
        topic, key = route(event)
        await producer.send_and_wait(topic, ev.encode_event(event), key=key.encode())


@dataclass
class Collected:
    records: list[Any] = field(default_factory=list)

    def headers(self, index: int) -> dict[str, str]:
        return {k: v.decode() for k, v in self.records[index].headers}


@contextlib.asynccontextmanager
async def collect(bootstrap: str, *topics: str) -> AsyncIterator[Collected]:
    """Read everything on `topics` from the beginning, in the background, without a group."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out = Collected()

    async def pump() -> None:
        async for record in consumer:
            out.records.append(record)

    task = asyncio.create_task(pump())
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def committed_offset(bootstrap: str, group_id: str, topic: str, partition: int = 0) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, partition))
        return int(offset) if offset is not None else -1
    finally:
        await consumer.stop()


async def wait_caught_up(bootstrap: str, group_id: str, topics: tuple[str, ...]) -> None:
    """Wait until `group_id` has committed every message now on `topics`.

    Deterministic where a sleep would guess: after this, the group processed all of it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    assert len({tp.topic for tp in partitions}) == len(topics), f"unknown topics in {topics}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(60):
            while True:
                behind = [
                    tp for tp in partitions if ((await consumer.committed(tp)) or 0) < ends[tp]
                ]
                if not behind:
                    return
                await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
