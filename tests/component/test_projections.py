"""A projection rebuilt from `events` equals the one maintained live, row for row."""

from __future__ import annotations

import asyncio
import random

import pytest

from contracts import events as ev
from contracts.ids import new_id
from services.common.db import Conn, Pool
from services.common.eventstore import ConcurrencyError, EventStore, Recorded
from services.common.projections import rebuild

pytestmark = pytest.mark.infra

STORE: EventStore[ev.Event] = EventStore(ev.decode_event_dict)


class StreamSummary:
    """Per stream: how many events, the last reason, and the running total of reason lengths."""

    tables: tuple[str, ...] = ("stream_summary",)

    async def apply(self, conn: Conn, recorded: Recorded[ev.Event]) -> None:
        event = recorded.event
        assert isinstance(event, ev.BatchAbandoned)
        await conn.execute(
            "INSERT INTO stream_summary AS s (stream_id, events, last_reason, total_len, version)"
            " VALUES ($1, 1, $2, length($2), $3)"
            " ON CONFLICT (stream_id) DO UPDATE SET events = s.events + 1,"
            "   last_reason = excluded.last_reason, total_len = s.total_len + excluded.total_len,"
            "   version = excluded.version",
            recorded.stream_id,
            event.reason,
            recorded.version,
        )


async def _snapshot(pool: Pool) -> list[tuple[object, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM stream_summary ORDER BY stream_id")
    return [tuple(r.values()) for r in rows]


async def test_rebuilt_projection_equals_the_live_one(schema_pool: tuple[str, Pool]) -> None:
    _, pool = schema_pool
    projection = StreamSummary()
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE stream_summary (stream_id text PRIMARY KEY, events int NOT NULL,"
            " last_reason text NOT NULL, total_len int NOT NULL, version int NOT NULL)"
        )
    streams = [new_id() for _ in range(8)]
    rng = random.Random(7)

    async def writer(worker: int) -> None:
        """Concurrent writers; losers of a version race reload and retry, as services do."""
        for i in range(40):
            stream = rng.choice(streams)
            while True:
                async with pool.acquire() as conn:
                    try:
                        async with conn.transaction():
                            version = len(await STORE.load(conn, stream))
                            event = ev.BatchAbandoned(
                                team_id=new_id(), correlation_id=stream, batch_id=stream,
                                reason="r" * rng.randint(1, 30) + f"-{worker}-{i}",
                            )  # fmt: skip
                            for recorded in await STORE.append(conn, stream, version, [event]):
                                await projection.apply(conn, recorded)
                        break
                    except ConcurrencyError:
                        continue

    await asyncio.gather(*(writer(w) for w in range(4)))
    live = await _snapshot(pool)
    assert sum(int(row[1]) for row in live) == 160  # type: ignore[call-overload]

    replayed = await rebuild(pool, STORE, projection)
    assert replayed == 160
    assert await _snapshot(pool) == live
