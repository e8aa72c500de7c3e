"""Read models kept in step with the event log, and rebuilt from it on demand.

A service updates its projections in the transaction that appends the events, so reads are
consistent with writes. `rebuild` replays the whole `events` table into empty projection tables:
the proof that the read side holds nothing the log does not.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from services.common.db import Conn, Pool
from services.common.eventstore import EventStore, Recorded, StorableEvent

E = TypeVar("E", bound=StorableEvent)


class Projection(Protocol[E]):
    tables: tuple[str, ...]

    async def apply(self, conn: Conn, recorded: Recorded[E]) -> None: ...


async def rebuild(
    pool: Pool, store: EventStore[E], projection: Projection[E], *, page: int = 1000
) -> int:
    """Empty the projection's tables and replay every event into them, in one transaction.

    Readers wait on the table lock until the rebuild commits, so nobody sees a half-built
    read model. Returns the number of events replayed.
    """
    replayed = 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(projection.tables)}")
        position = 0
        while batch := await store.read_all(conn, position, page):
            for recorded in batch:
                await projection.apply(conn, recorded)
            position = batch[-1].position
            replayed += len(batch)
    return replayed
