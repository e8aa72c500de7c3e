"""The I/O every service runs: database pool and migrations, topics, outbox relay, consumers.

A service's `app.py` builds one `Runtime`, registers its consumers in `wire`, and hands
`Runtime.lifespan` to its HTTP app. Start order is dependencies first; stop is the reverse,
so in-flight handlers finish before the pool they write to closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber

from contracts.topics import ALL_TOPICS, BATCHES, dead_letter_topic
from services.common.consumer import make_broker
from services.common.db import Migration, Pool, common_migrations, create_pool, migrate
from services.common.kafka_client import KafkaConnection
from services.common.metrics import StateSampler
from services.common.outbox import OutboxRelay, kafka_producer
from services.common.settings import CommonSettings
from services.common.telemetry import setup_logging, setup_tracing
from services.common.topics_admin import ensure_topics

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    service: str
    settings: CommonSettings
    migrations: Sequence[Migration] = ()
    consumer_groups: Sequence[str] = ()
    # topics the service needs besides the internal ones (intake's public topics)
    topics: Sequence[str] = ()
    wire: Callable[[Runtime], None] = lambda _: None
    # long-running loops of the service (e.g. the notifier's dispatcher); each gets `stopping`
    background: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = ()
    # work that must finish before the service counts as started (/startupz), e.g. loading
    # the detector's models; it runs after start, so the process answers probes meanwhile
    warm_up: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = ()
    _pool: Pool | None = None
    _producer: AIOKafkaProducer | None = None
    _broker: KafkaBroker | None = None
    _relay: OutboxRelay | None = None
    _metrics: StateSampler | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def schema(self) -> str:
        return self.service

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the service begins to stop; background loops end when they see it."""
        return self._stop

    @property
    def started(self) -> bool:
        """True once start() returned and every warm-up finished."""
        return self._started.is_set()

    @property
    def pool(self) -> Pool:
        assert self._pool is not None, "runtime not started"
        return self._pool

    @property
    def broker(self) -> KafkaBroker:
        assert self._broker is not None, "runtime not started"
        return self._broker

    async def start(self) -> None:
        """Start everything, or nothing: a failure part-way stops what had started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.settings
        setup_logging(self.service, s.log_level)
        setup_tracing(self.service, s.otlp_endpoint)
        self._pool = await create_pool(s.database_url, self.schema)
        await migrate(self._pool, self.schema, [*common_migrations(), *self.migrations])
        kafka = KafkaConnection.from_settings(s)
        dead_letters = tuple(dead_letter_topic(g) for g in self.consumer_groups)
        await ensure_topics(
            kafka,
            (*ALL_TOPICS, *self.topics, *dead_letters),
            partitions=s.kafka_partitions,
            replication=s.kafka_replication_factor,
            create=s.kafka_manage_topics,
        )
        self._producer = kafka_producer(kafka)
        await self._producer.start()
        self._relay = OutboxRelay(self._pool, self.schema, self._producer)
        self._tasks.append(asyncio.create_task(self._relay.run(self._stop)))
        self._broker = make_broker(
            kafka, client_id=self.service, graceful_seconds=s.shutdown_grace_seconds
        )
        self.wire(self)
        groups = [
            (sub.group_id, tuple(sub.topic_names))
            for sub in self._broker.subscribers
            if isinstance(sub, LogicSubscriber) and sub.group_id
        ]
        self._metrics = StateSampler(self.service, lambda: self.pool, kafka, groups)
        await self._broker.start()
        self._tasks.extend(asyncio.create_task(loop(self)) for loop in self.background)
        self._tasks.append(asyncio.create_task(self._warm_up()))
        log.info("service started", extra={"fields": {"schema": self.schema}})

    async def _warm_up(self) -> None:
        try:
            for step in self.warm_up:
                await step(self)
        except Exception:  # /startupz stays 503, the orchestrator restarts us
            log.exception("warm-up failed")
            return
        self._started.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._broker is not None:
            await self._broker.stop()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        if self._producer is not None:
            await self._producer.stop()
        if self._metrics is not None:
            await self._metrics.close()
        if self._pool is not None:
            await self._pool.close()

    async def health(self) -> dict[str, Any]:
        """Each dependency's state; `ok` only when all of them answer."""
        checks: dict[str, Any] = {}
        try:
            async with self.pool.acquire() as conn:
                checks["outbox_pending"] = await conn.fetchval("SELECT count(*) FROM outbox")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc}"
        try:
            assert self._producer is not None
            await asyncio.wait_for(self._producer.partitions_for(BATCHES), 2)
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"error: {exc!r}"
        relay_alive = bool(self._tasks) and not self._tasks[0].done()
        checks["outbox_relay"] = "ok" if relay_alive else "stopped"
        checks["started"] = "ok" if self.started else "warming up"
        ok = all(checks[k] == "ok" for k in ("database", "kafka", "outbox_relay", "started"))
        return {"status": "ok" if ok else "degraded", "service": self.service, "checks": checks}

    async def metrics(self) -> bytes:
        """The Prometheus exposition, with this service's state gauges freshly sampled."""
        assert self._metrics is not None, "runtime not started"
        return await self._metrics.render()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
