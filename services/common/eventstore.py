"""An append-only event store on PostgreSQL with optimistic concurrency.

Shaped after pyeventsourcing's Postgres recorder: the primary key (stream_id, version) makes a
stale writer fail instead of overwriting, and every function takes the caller's connection so
that appending, the outbox row, the inbox mark and projection updates share one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from pydantic import Field

from contracts.events import Frozen
from contracts.ids import Id, UtcDatetime, new_id, utcnow
from services.common.db import Conn


class StorableEvent(Protocol):
    """What the store needs of an event: identity, type, version and a JSON form."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


E = TypeVar("E", bound=StorableEvent)


class DomainEvent(Frozen):
    """Envelope of a service's own events (those that never leave it), as the store needs."""

    event_id: Id = Field(default_factory=new_id)
    event_type: str
    schema_version: int = 1
    occurred_at: UtcDatetime = Field(default_factory=utcnow)


class ConcurrencyError(Exception):
    """The stream moved past the expected version: reload, decide again, retry."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id!r} is no longer at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


@dataclass(frozen=True)
class Recorded(Generic[E]):
    stream_id: str
    version: int
    position: int
    event: E


class EventStore(Generic[E]):
    """Reads and writes one schema's `events` table; `decode` turns stored JSON into events."""

    def __init__(self, decode: Callable[[Mapping[str, Any]], E]) -> None:
        self._decode = decode

    async def append(
        self,
        conn: Conn,
        stream_id: str,
        expected_version: int,
        events: Sequence[E],
    ) -> list[Recorded[E]]:
        """Append after `expected_version` (0 for a new stream) or raise ConcurrencyError.

        Must run inside the caller's transaction. A duplicate event_id is a ConcurrencyError
        too: the same decision was already recorded.
        """
        if not events:
            return []
        rows = [
            (
                stream_id,
                expected_version + i,
                e.event_id,
                e.event_type,
                e.schema_version,
                e.model_dump(mode="json"),
            )
            for i, e in enumerate(events, start=1)
        ]
        try:
            async with conn.transaction():  # a savepoint: the caller's transaction survives
                positions = await conn.fetch(
                    "INSERT INTO events"
                    " (stream_id, version, event_id, event_type, schema_version, payload)"
                    " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[],"
                    "                      $5::int[], $6::jsonb[])"
                    " RETURNING version, position",
                    *map(list, zip(*rows, strict=True)),
                )
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyError(stream_id, expected_version) from exc
        by_version = {r["version"]: r["position"] for r in positions}
        return [
            Recorded(stream_id, expected_version + i, by_version[expected_version + i], e)
            for i, e in enumerate(events, start=1)
        ]

    async def load(self, conn: Conn, stream_id: str) -> list[Recorded[E]]:
        rows = await conn.fetch(
            "SELECT stream_id, version, position, payload FROM events"
            " WHERE stream_id = $1 ORDER BY version",
            stream_id,
        )
        return [self._row(r) for r in rows]

    async def read_all(
        self, conn: Conn, after_position: int = 0, limit: int = 1000
    ) -> list[Recorded[E]]:
        """Events in global order after `after_position`, for replays and rebuilds.

        Positions are assigned at insert, not at commit, so a live tailer could pass over a
        transaction still in flight; rebuilds run on a quiet table or in one snapshot.
        """
        rows = await conn.fetch(
            "SELECT stream_id, version, position, payload FROM events"
            " WHERE position > $1 ORDER BY position LIMIT $2",
            after_position,
            limit,
        )
        return [self._row(r) for r in rows]

    def _row(self, r: asyncpg.Record) -> Recorded[E]:
        return Recorded(r["stream_id"], r["version"], r["position"], self._decode(r["payload"]))
