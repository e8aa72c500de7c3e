"""The event store against a real PostgreSQL: optimistic concurrency, loading, global order."""

from __future__ import annotations

import asyncio

import pytest

from contracts import events as ev
from contracts.ids import new_id
from services.common.db import Pool
from services.common.eventstore import ConcurrencyError, EventStore

pytestmark = pytest.mark.infra


def _abandoned(batch: str, reason: str) -> ev.BatchAbandoned:
    return ev.BatchAbandoned(team_id=new_id(), correlation_id=batch, batch_id=batch, reason=reason)


STORE: EventStore[ev.Event] = EventStore(ev.decode_event_dict)


async def test_two_writers_at_the_same_version_exactly_one_wins(
    schema_pool: tuple[str, Pool],
) -> None:
    _, pool = schema_pool
    stream = new_id()
    async with pool.acquire() as conn:
        await STORE.append(conn, stream, 0, [_abandoned(stream, "first")])

    both_ready = asyncio.Barrier(2)

    async def writer(reason: str) -> str:
        async with pool.acquire() as conn, conn.transaction():
            await both_ready.wait()  # both read version 1, both decide, both append
            await STORE.append(conn, stream, 1, [_abandoned(stream, reason)])
        return reason

    results = await asyncio.gather(writer("a"), writer("b"), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, ConcurrencyError)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert losers[0].expected_version == 1

    async with pool.acquire() as conn:
        loaded = await STORE.load(conn, stream)
    assert [r.version for r in loaded] == [1, 2]
    second = loaded[1].event
    assert isinstance(second, ev.BatchAbandoned)
    assert second.reason == winners[0]


async def test_stale_writer_fails_and_its_transaction_stays_usable(
    schema_pool: tuple[str, Pool],
) -> None:
    _, pool = schema_pool
    stream = new_id()
    async with pool.acquire() as conn:
        await STORE.append(conn, stream, 0, [_abandoned(stream, "a"), _abandoned(stream, "b")])
        async with conn.transaction():
            with pytest.raises(ConcurrencyError):
                await STORE.append(conn, stream, 1, [_abandoned(stream, "stale")])
            # the failed append rolled back to its savepoint; the caller can still decide anew
            await STORE.append(conn, stream, 2, [_abandoned(stream, "c")])
        loaded = await STORE.load(conn, stream)
    assert [getattr(r.event, "reason", None) for r in loaded] == ["a", "b", "c"]


async def test_the_same_event_cannot_be_recorded_twice(schema_pool: tuple[str, Pool]) -> None:
    _, pool = schema_pool
    stream = new_id()
    event = _abandoned(stream, "once")
    async with pool.acquire() as conn:
        await STORE.append(conn, stream, 0, [event])
        with pytest.raises(ConcurrencyError):
            await STORE.append(conn, new_id(), 0, [event])


async def test_read_all_returns_every_stream_in_commit_order(schema_pool: tuple[str, Pool]) -> None:
    _, pool = schema_pool
    streams = [new_id() for _ in range(3)]
    async with pool.acquire() as conn:
        for round_ in range(4):
            for stream in streams:
                await STORE.append(conn, stream, round_, [_abandoned(stream, f"{round_}")])
        first = await STORE.read_all(conn, 0, limit=5)
        rest = await STORE.read_all(conn, first[-1].position, limit=100)
    everything = first + rest
    assert len(everything) == 12
    positions = [r.position for r in everything]
    assert positions == sorted(positions)
    assert [r.stream_id for r in everything[:3]] == streams
