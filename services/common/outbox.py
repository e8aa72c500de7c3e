"""The transactional outbox: events leave a service only through rows written with its state.

`enqueue` runs inside the caller's transaction. `OutboxRelay` publishes rows in id order with an
idempotent, acks=all producer and deletes them only after the broker acknowledged them. A relay
killed between publish and delete publishes those rows again on restart: duplicates are
possible, loss is not, and consumers dedupe by event id (see `inbox`). One relay per schema
holds an advisory lock, so rows of one key are never published out of order by two relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from opentelemetry import propagate

from contracts import headers as h
from contracts.events import Event, encode_event
from contracts.topics import route as contract_route
from services.common.db import Conn, Pool, check_schema_name
from services.common.kafka_client import KafkaConnection, connection_of

log = logging.getLogger(__name__)


def notify_channel(schema: str) -> str:
    return f"verity_outbox_{check_schema_name(schema)}"


Router = Callable[[Event], tuple[str, str]]


@dataclass(frozen=True)
class Message:
    """One outbox row as it will leave: an internal event (`of_event`) or any other message,
    such as a public CloudEvent whose value is its data and whose attributes are headers."""

    topic: str
    key: str
    message_id: str
    kind: str
    payload: bytes
    headers: Mapping[str, str]

    @classmethod
    def of_event(cls, event: Event, route: Router = contract_route) -> Message:
        topic, key = route(event)
        event_headers = {
            h.EVENT_ID: event.event_id,
            h.EVENT_TYPE: event.event_type,
            h.SCHEMA_VERSION: str(event.schema_version),
            h.CONTENT_TYPE: h.JSON,
        }
        return cls(topic, key, event.event_id, event.event_type, encode_event(event), event_headers)


async def enqueue(conn: Conn, events: Sequence[Event], *, route: Router = contract_route) -> None:
    """Queue events for publication; they leave only if the caller's transaction commits.

    `route` picks (topic, key); tests pass their own.
    """
    await enqueue_messages(conn, [Message.of_event(event, route) for event in events])


async def enqueue_messages(conn: Conn, messages: Sequence[Message]) -> None:
    """Queue messages in the caller's transaction, in order.

    The current trace context is stored with each row so that consumers continue the trace of
    the request that caused the message.
    """
    if not messages:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    await conn.executemany(
        "INSERT INTO outbox (topic, key, event_id, event_type, payload, headers)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (m.topic, m.key, m.message_id, m.kind, m.payload, {**m.headers, **carrier})
            for m in messages
        ],
    )
    # delivered at commit; the channel name matches `notify_channel(schema)`
    await conn.execute("SELECT pg_notify('verity_outbox_' || current_schema(), '')")


def kafka_producer(kafka: str | KafkaConnection, **overrides: object) -> AIOKafkaProducer:
    """The producer every Verity service publishes with: durable and ordered per partition."""
    config: dict[str, object] = {
        **connection_of(kafka).options(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        # aiokafka's 16 KiB default caps throughput at about half of what 256 KiB allows
        # (bench/outbox.py); linger_ms, not the batch size, bounds the added latency.
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
    config.update(overrides)
    return AIOKafkaProducer(**config)


class OutboxRelay:
    """Moves outbox rows of one schema to Kafka, in order, until stopped."""

    def __init__(
        self,
        pool: Pool,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._schema = check_schema_name(schema)
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self.published = 0

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published and deleted.

        It always reads the oldest pending rows rather than "ids after the last one sent":
        ids are taken at insert but become visible at commit, so a lower id can appear after
        a higher one was published, and must not be skipped. (Rows of one stream still leave
        in order: a stream's next append starts only after the previous one committed.)
        """
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, payload, headers FROM outbox ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                return 0
            pending = [
                await self._producer.send(
                    r["topic"],
                    value=r["payload"],
                    key=r["key"].encode(),
                    headers=[(k, v.encode()) for k, v in r["headers"].items()],
                )
                for r in rows
            ]
            await asyncio.gather(*pending)  # every row acknowledged by all in-sync replicas
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        self.published += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set. Woken by NOTIFY on commit, polls as a fallback."""
        async with self._pool.acquire() as lock_conn:
            while not stop.is_set():
                locked = await lock_conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1))", f"outbox-relay:{self._schema}"
                )
                if locked:
                    break
                await _wait(stop, self._poll_interval)
            if stop.is_set():
                return
            await lock_conn.add_listener(notify_channel(self._schema), self._on_notify)
            try:
                while not stop.is_set():
                    self._wakeup.clear()
                    try:
                        if await self.relay_once() == self._batch_size:
                            continue  # more waiting: do not sleep
                    except Exception:
                        log.exception("outbox relay batch failed; retrying")
                        await _wait(stop, self._poll_interval)
                        continue
                    await _wait(stop, self._poll_interval, also=self._wakeup)
            finally:
                with contextlib.suppress(Exception):
                    await lock_conn.remove_listener(notify_channel(self._schema), self._on_notify)
                    await lock_conn.execute(
                        "SELECT pg_advisory_unlock(hashtext($1))", f"outbox-relay:{self._schema}"
                    )

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()


async def _wait(stop: asyncio.Event, seconds: float, also: asyncio.Event | None = None) -> None:
    """Sleep up to `seconds`, returning early when `stop` (or `also`) is set."""
    waiters = {asyncio.ensure_future(e.wait()) for e in (stop, also) if e is not None}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
