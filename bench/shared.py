"""Helpers every bench uses: a started producer, throwaway topics, percentiles, tables."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka.admin import NewTopic

from services.common import outbox


@contextlib.asynccontextmanager
async def started_producer(bootstrap: str, *topics: str) -> AsyncIterator[Any]:
    """`outbox.kafka_producer` (what every service publishes with), metadata fetched."""
    producer = outbox.kafka_producer(bootstrap)
    await producer.start()
    try:
        for topic in topics:
            await producer.partitions_for(topic)
        yield producer
    finally:
        await producer.stop()


class Topics:
    """Creates uniquely named bench topics (`bench.<bench>.<what>.<hex>`) and deletes them."""

    def __init__(self, admin: Any, partitions: int, bench: str) -> None:
        self._admin = admin
        self._partitions = partitions
        self._bench = bench
        self.created: list[str] = []

    async def new(self, what: str) -> str:
        name = f"bench.{self._bench}.{what}.{uuid.uuid4().hex[:8]}"
        await self._admin.create_topics([NewTopic(name, self._partitions, 1)])
        self.created.append(name)
        return name

    async def delete_all(self) -> None:
        if self.created:
            await self._admin.delete_topics(self.created)
            self.created.clear()


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def format_rows(rows: Sequence[tuple[str, ...]]) -> str:
    """The first column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
