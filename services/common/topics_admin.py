"""Verity's topics: created with their real partition counts, or checked to exist.

On a developer machine each service creates what is missing at start-up. On a cluster the
topics are Strimzi `KafkaTopic` resources (replicas, min.insync.replicas) and the services'
users may not create topics, so there they only check, and refuse to start without them.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.common.kafka_client import KafkaConnection, connection_of


class MissingTopicsError(RuntimeError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"topics missing and VERITY_KAFKA_MANAGE_TOPICS is off: {', '.join(missing)} "
            "(create them, e.g. the KafkaTopic resources in deploy/k8s)"
        )
        self.missing = missing


async def ensure_topics(
    kafka: str | KafkaConnection,
    topics: tuple[str, ...],
    *,
    partitions: int,
    replication: int = 1,
    create: bool = True,
) -> None:
    admin = AIOKafkaAdminClient(**connection_of(kafka).options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing and not create:
            raise MissingTopicsError(missing)
        if missing:
            # another service may create them meanwhile: that is success too
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
    finally:
        await admin.close()
