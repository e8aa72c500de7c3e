"""Fixtures shared by all tests: real infrastructure, isolated per test by names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.db import Pool, common_migrations, create_pool, migrate
from tests.support.infra import Infra, S3Server, ensure_infra, ensure_s3


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    started = ensure_infra()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3-compatible server (moto's, from deploy/local/s3.sh); each test makes its buckets."""
    started = ensure_s3()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
async def schema_pool(infra: Infra) -> AsyncIterator[tuple[str, Pool]]:
    """A fresh schema with the common tables (events, outbox, inbox), dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await create_pool(infra.database_url, schema, max_size=8)
    await migrate(pool, schema, common_migrations())
    try:
        yield schema, pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(infra: Infra) -> AsyncIterator[TopicFactory]:
    """Create uniquely named topics: `await new_topic("orders", partitions=3)`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()

    async def create(
        prefix: str = "t",
        *,
        partitions: int = 1,
        name: str | None = None,
        config: dict[str, str] | None = None,
    ) -> str:
        name = name or f"test.{prefix}.{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
        return name

    try:
        yield create
    finally:
        await admin.close()


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer, for tests that play another service's part."""
    p = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
