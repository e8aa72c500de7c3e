"""Prometheus metrics every service exports at `/metrics`, and the few each service adds.

Counters and histograms are updated where things happen (a request ends, a message is
dead-lettered, a detect completes). Gauges that describe state elsewhere (the outbox table,
the broker's offsets) are read when Prometheus scrapes, at most every `SAMPLE_SECONDS`, so an
idle service costs nothing and a scrape never shows numbers older than that.

Names are the contract with deploy/monitoring (dashboard and alert rules): change them there too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from services.common.db import Pool
from services.common.kafka_client import KafkaConnection

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 10.0
CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "verity_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "verity_http_request_duration_seconds",
    "Time from request start to the last byte of the response.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
OUTBOX_BACKLOG = Gauge(
    "verity_outbox_backlog", "Outbox rows not yet published to Kafka.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "verity_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0 when empty): the relay's lag.",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "verity_consumer_lag",
    "Messages on the topic not yet committed by the group (summed over partitions).",
    ["service", "group", "topic"],
)
DEAD_LETTERS = Counter(
    "verity_dead_letters_total",
    "Messages a consumer group gave up on and sent to its dead-letter topic.",
    ["service", "group", "topic"],
)
DETECTS = Counter(
    "verity_detects_total",
    "Detects the detector finished, by modality and label (failed for errors).",
    ["modality", "label"],
)
ANALYSIS_SECONDS = Histogram(
    "verity_analysis_seconds",
    "Wall time of one file's analysis in the detector's worker process.",
    ["modality", "model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 240),
)
BATCHES_REJECTED = Counter(
    "verity_batches_rejected_total",
    "Batches refused after validation (402 insufficient_funds).",
    ["reason"],
)
CALLBACK_DELIVERIES = Counter(
    "verity_callback_deliveries_total",
    "Callback attempts by outcome: delivered, retry (will try again), failed (gave up).",
    ["outcome"],
)
PUBLIC_EVENTS = Counter(
    "verity_public_events_total",
    "Public events queued, by CloudEvents type; conforms=false: the item broke its public"
    " model (published all the same, and logged: a bug to fix, see docs/events.md).",
    ["type", "conforms"],
)

# FastStream's own consumer metrics (received, processed, durations); one middleware object per
# process, since its collectors are registered once in the registry.
FASTSTREAM = KafkaPrometheusMiddleware(registry=REGISTRY, app_name="verity")


def service_of_group(group_id: str) -> str:
    """Consumer groups are named `<service>` or `<service>-<purpose>` (e.g. intake-saga)."""
    return group_id.split("-", 1)[0]


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_SECONDS.labels(service, method, route).observe(seconds)


class StateSampler:
    """Refreshes one service's state gauges from PostgreSQL and Kafka, at most every 10 s."""

    def __init__(
        self,
        service: str,
        pool: Callable[[], Pool],
        kafka: KafkaConnection,
        groups: Sequence[tuple[str, tuple[str, ...]]],
    ) -> None:
        self._service = service
        self._pool = pool
        self._kafka = kafka
        self._groups = groups  # (group id, topics it reads)
        self._sampled_at = -SAMPLE_SECONDS
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def render(self) -> bytes:
        async with self._lock:
            if time.monotonic() - self._sampled_at >= SAMPLE_SECONDS:
                await self._sample()
                self._sampled_at = time.monotonic()
        return generate_latest(REGISTRY)

    async def _sample(self) -> None:
        # each part on its own: a broker outage must not hide the outbox growing, and vice versa
        for part in (self._sample_outbox, self._sample_lag):
            try:
                await asyncio.wait_for(part(), 5)
            except Exception:
                log.warning("metrics sample failed", exc_info=True,
                            extra={"fields": {"part": part.__name__}})  # fmt: skip

    async def _sample_outbox(self) -> None:
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, "
                "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
            )
        assert row is not None
        OUTBOX_BACKLOG.labels(self._service).set(row["n"])
        OUTBOX_OLDEST_AGE.labels(self._service).set(float(row["age"]))

    async def _sample_lag(self) -> None:
        if not self._groups:
            return
        consumer, admin = await self._clients()
        for group, topics in self._groups:
            committed = await admin.list_consumer_group_offsets(group)
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
            for topic in topics:
                behind = 0
                for tp, end in ends.items():
                    if tp.topic == topic:
                        done = committed.get(tp)
                        behind += max(0, end - (done.offset if done and done.offset >= 0 else 0))
                CONSUMER_LAG.labels(self._service, group, topic).set(behind)

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(**self._kafka.options(), group_id=None)
            admin = AIOKafkaAdminClient(**self._kafka.options())
            await _started(consumer.start, consumer.stop)
            await _started(admin.start, admin.close)
            self._consumer, self._admin = consumer, admin
        await self._consumer.topics()  # refreshes metadata, so partitions_for_topic knows them
        return self._consumer, self._admin

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._consumer = self._admin = None


async def _started(start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]]) -> None:
    try:
        await start()
    except BaseException:
        await stop()
        raise
