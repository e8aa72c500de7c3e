"""Carry out one batch command: load, decide, record; again if another writer won the race."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from contracts.ids import utcnow
from services.common.blobstore import BlobStore
from services.common.db import Conn
from services.common.eventstore import ConcurrencyError
from services.intake.domain.batch import Batch, BatchEvent, Command, blobs_to_delete, decide, evolve
from services.intake.store import batches

MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Batches:
    """The write side of batches, shared by the HTTP handlers and the consumers."""

    blobs: BlobStore
    render: batches.PayloadRenderer
    public: batches.PublicRenderer = batches.no_public_events

    async def execute(
        self, conn: Conn, batch_id: str, command: Command
    ) -> tuple[list[BatchEvent], Batch]:
        """Decide `command` on the latest batch and record it, in `conn`'s transaction.

        Results of one batch arrive concurrently from several partitions: the loser of a race
        on the stream version reloads and decides again. Media the events release is deleted
        before the transaction commits (deleting twice is harmless, a leftover is not).
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            batch = await batches.load(conn, batch_id)
            events = decide(batch, command, utcnow())
            if not events:
                return [], batch
            try:
                async with conn.transaction():  # a savepoint: a lost race leaves nothing behind
                    await batches.record(conn, batch, events, self.render, self.public)
            except ConcurrencyError:
                if attempt == MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
                continue
            for key in blobs_to_delete(batch, events):
                await self.blobs.delete(key)
            after = batch
            for event in events:
                after = evolve(after, event)
            return events, after
        raise AssertionError("unreachable")  # pragma: no cover
