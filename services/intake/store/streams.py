"""One command against one event stream: load, decide, append, project, publish; retry races.

Every aggregate of intake other than the batch (identities, feedback, questions) is recorded
the same way: its events replayed into a state, the pure `decide` asked, the new events
appended at the stream's version (PRIMARY KEY (stream_id, version): of two concurrent writers
one wins), projected into the read model and queued in the outbox in the same transaction.
The loser reloads and decides again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from contracts import events as ev
from services.common import outbox
from services.common.db import Conn
from services.common.eventstore import ConcurrencyError, DomainEvent, EventStore, Recorded

E = TypeVar("E", bound=DomainEvent | ev.Event)
S = TypeVar("S")
MAX_ATTEMPTS = 20


async def decide_and_record(
    conn: Conn,
    store: EventStore[E],
    stream: str,
    replay: Callable[[list[E]], S],
    decide: Callable[[S], Sequence[E]],
    project: Callable[[Conn, Recorded[E]], Awaitable[None]],
    published: tuple[type[ev.Event], ...] = (),
) -> tuple[S, list[E]]:
    """(the state before, the events recorded); no events when the command changed nothing.
    Recorded events of the `published` types also go to the outbox (others came from Kafka)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        records = await store.load(conn, stream)
        state = replay([r.event for r in records])
        events = list(decide(state))
        if not events:
            return state, []
        try:
            async with conn.transaction():
                for recorded in await store.append(conn, stream, len(records), events):
                    await project(conn, recorded)
                await outbox.enqueue(conn, [e for e in events if isinstance(e, published)])
        except ConcurrencyError:
            if attempt == MAX_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * attempt))
            continue
        return state, events
    raise AssertionError("unreachable")  # pragma: no cover
