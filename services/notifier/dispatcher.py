"""Sends due callbacks from the durable schedule in PostgreSQL, until stopped.

A due delivery is leased (so replicas never send one attempt twice at once), attempted
outside any transaction, then its outcome is recorded as an event. A notifier killed between
lease and record loses nothing: the lease runs out and the attempt is made again, with the
same webhook-id, which receivers use to drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from contracts.ids import utcnow
from services.common import metrics
from services.common.db import Pool
from services.common.eventstore import ConcurrencyError
from services.notifier import secrets, store
from services.notifier.domain import (
    AttemptFailed,
    Delivered,
    DeliveryAbandoned,
    DeliveryEvent,
    RecordAttempt,
    RetryPolicy,
    decide,
)
from services.notifier.sender import Sender

log = logging.getLogger(__name__)

# verity_callback_deliveries_total{outcome}: what each recorded attempt came to
_OUTCOMES: dict[type[DeliveryEvent], str] = {
    Delivered: "delivered",
    AttemptFailed: "retry",
    DeliveryAbandoned: "failed",
}


class Dispatcher:
    def __init__(
        self,
        pool: Pool,
        sender: Sender,
        policy: RetryPolicy,
        *,
        lease_seconds: float = 60.0,
        concurrency: int = 16,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._sender = sender
        self._policy = policy
        self._lease = lease_seconds
        self._concurrency = concurrency
        self._poll = poll_seconds

    async def claim(self, limit: int) -> list[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "UPDATE deliveries SET leased_until = now() + make_interval(secs => $2)"
                " WHERE webhook_id IN ("
                "   SELECT webhook_id FROM deliveries WHERE status = 'pending'"
                "     AND next_attempt_at <= now()"
                "     AND (leased_until IS NULL OR leased_until < now())"
                "   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " RETURNING webhook_id",
                limit,
                self._lease,
            )
        return [r["webhook_id"] for r in rows]

    async def attempt(self, webhook_id: str) -> None:
        async with self._pool.acquire() as conn:
            delivery = await store.load(conn, webhook_id)
            if delivery is None or delivery.status != "pending":
                return
            keys = await secrets.signing(conn, delivery.team_id, utcnow())
        outcome = await self._sender.send(delivery, keys, utcnow())
        command = RecordAttempt(outcome=outcome, at=utcnow(), jitter=random.random())
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                current = await store.load(conn, webhook_id)
                events = decide(current, command, self._policy)
                await store.record(conn, current, webhook_id, events)
        except ConcurrencyError:
            log.warning("another dispatcher recorded this attempt first",
                        extra={"fields": {"webhook_id": webhook_id}})  # fmt: skip
            return
        for event in events:
            if outcome_label := _OUTCOMES.get(type(event)):
                metrics.CALLBACK_DELIVERIES.labels(outcome_label).inc()

    async def run(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            try:
                free = self._concurrency - len(running)
                for webhook_id in await self.claim(free) if free else []:
                    task = asyncio.create_task(self.attempt(webhook_id))
                    running.add(task)
                    task.add_done_callback(running.discard)
            except Exception:
                log.exception("dispatcher pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
