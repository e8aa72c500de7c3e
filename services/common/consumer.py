"""Kafka consumers with safe defaults, built on FastStream.

Every subscription made through `subscribe`:
- has an explicit group id and commits an offset only after its handler returned (coalesced
  in the background, see `OffsetCommitter`); an exception seeks back, so nothing is committed
  past an unprocessed message;
- decodes bytes itself, so a malformed message reaches our error path instead of failing
  inside FastStream's JSON guessing;
- retries a failing handler a bounded number of times, then publishes the message to the
  group's dead-letter topic (`contracts.topics.dead_letter_topic`) and commits, so one poison
  message cannot stall its partition. If even the dead-letter publish fails, the message is
  not committed and comes back;
- continues the producer's trace from the message headers.

Handlers receive decoded events and must be idempotent (see `with_inbox`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from opentelemetry import trace
from pydantic import ValidationError

from contracts import headers as h
from contracts.events import Event, decode_event
from contracts.topics import dead_letter_topic
from services.common import inbox, metrics
from services.common.db import Conn, Pool
from services.common.kafka_client import KafkaConnection, connection_of
from services.common.telemetry import context_from_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Handler = Callable[[Event], Awaitable[None]]
Effect = Callable[[Conn, Event], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """In-process retries before dead-lettering. Keep the total far below max_poll_interval."""

    attempts: int = 4
    first_backoff: float = 0.2
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.first_backoff * 2 ** (attempt - 1)))


def make_broker(
    kafka: str | KafkaConnection, *, client_id: str, graceful_seconds: float = 30.0
) -> KafkaBroker:
    """A broker whose producer (used for dead letters) is durable: acks=all, idempotent.

    Topics are created by `ensure_topics` with their real partition counts, never implicitly
    by a subscriber with one partition.
    """
    connection = connection_of(kafka)
    return KafkaBroker(
        connection.bootstrap,
        security=connection.faststream_security(),
        middlewares=(metrics.FASTSTREAM,),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"faststream.{client_id}"),
        graceful_timeout=graceful_seconds,  # in-flight handlers may finish on stop
    )


class OffsetCommitter:
    """Commits processed offsets of one consumer in the background, coalesced.

    Awaiting a commit per message costs a broker round trip per message and capped a consumer
    at well under 100 messages/s (bench/wallet.py). Offsets are marked only after a message's
    transaction committed, so this stays at-least-once: a crash before the background commit
    redelivers a few processed messages, and the inbox turns them into no-ops.
    """

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._offsets: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def processed(self, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition)
        self._offsets[tp] = max(offset + 1, self._offsets.get(tp, 0))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_pending())

    async def _commit_pending(self) -> None:
        while self._offsets:
            batch, self._offsets = self._offsets, {}
            try:
                await self._consumer.commit(batch)
            except Exception:  # e.g. a rebalance took the partition: its new owner re-reads
                log.warning("offset commit failed; those messages may be redelivered",
                            exc_info=True)  # fmt: skip


async def _raw(msg: StreamMessage[Any]) -> bytes:
    """FastStream decoder that leaves the body alone: decoding is ours to do and to fail."""
    body: bytes = msg.body
    return body


def subscribe(
    broker: KafkaBroker,
    topics: tuple[str, ...],
    group_id: str,
    handler: Handler,
    *,
    retry: RetryPolicy = RetryPolicy(),
    max_poll_interval_ms: int = 300_000,
) -> None:
    """Register `handler` for every event on `topics`, in consumer group `group_id`."""
    dlq = dead_letter_topic(group_id)
    service = metrics.service_of_group(group_id)

    async def dead_letter(msg: KafkaMessage, reason: str, error: str, attempts: int) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        passthrough = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        await broker.publish(
            record.value or b"",
            dlq,
            key=record.key,
            headers={
                **passthrough,
                h.DLQ_REASON: reason,
                h.DLQ_ERROR: error[:2000],
                h.DLQ_SOURCE_TOPIC: record.topic,
                h.DLQ_SOURCE_PARTITION: str(record.partition),
                h.DLQ_SOURCE_OFFSET: str(record.offset),
                h.DLQ_GROUP: group_id,
                h.DLQ_ATTEMPTS: str(attempts),
            },
        )
        metrics.DEAD_LETTERS.labels(service, group_id, record.topic).inc()
        log.error(
            "message dead-lettered",
            extra={
                "fields": {
                    "group": group_id,
                    "topic": record.topic,
                    "reason": reason,
                    "partition": record.partition,
                    "offset": record.offset,
                }
            },
        )

    committers: dict[int, OffsetCommitter] = {}

    async def on_message(body: bytes, msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        try:
            await handle(body, msg)
        except BaseException:
            await msg.nack()  # seek back: this message comes again, nothing after it commits
            raise
        committer = committers.get(id(msg.consumer))
        if committer is None:
            committer = committers[id(msg.consumer)] = OffsetCommitter(msg.consumer)
        committer.processed(record.topic, record.partition, record.offset)

    async def handle(body: bytes, msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        parent = context_from_headers(record.headers or ())
        with tracer.start_as_current_span(
            f"{record.topic} process", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.consumer.group.name", group_id)
            try:
                event = decode_event(body)
            except ValidationError as exc:
                await dead_letter(msg, "undecodable", str(exc), 0)
                return
            span.set_attribute("verity.event_id", event.event_id)
            for attempt in range(1, retry.attempts + 1):
                try:
                    await handler(event)
                    return
                except Exception as exc:  # any failure is retried, then dead-lettered
                    if attempt == retry.attempts:
                        await dead_letter(msg, "handler-failed", repr(exc), attempt)
                        return
                    log.warning(
                        "handler failed, retrying",
                        exc_info=True,
                        extra={"fields": {"group": group_id, "attempt": attempt}},
                    )
                    await asyncio.sleep(retry.backoff(attempt))

    broker.subscriber(
        *topics,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,  # on_message commits (coalesced) or seeks back itself
        decoder=_raw,
        auto_offset_reset="earliest",
        max_poll_interval_ms=max_poll_interval_ms,
    )(on_message)


def with_inbox(pool: Pool, group_id: str, effect: Effect) -> Handler:
    """Run `effect` in one transaction with the group's inbox mark: a redelivery is a no-op."""

    async def handle(event: Event) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await inbox.claim(conn, group_id, event.event_id):
                await effect(conn, event)

    return handle
