"""Wake waiting requests when a batch or detect they wait on changes (LISTEN/NOTIFY).

One LISTEN connection per intake process, whatever the number of waiting requests: the
projection sends `pg_notify(PROGRESS_CHANNEL, key)` in the transaction that changed the row, so
a request wakes as soon as any replica's consumer commits. A waiter re-reads the read model on
every wake-up and also every `poll_seconds`, so a notification lost while the listener was
reconnecting costs at most that long, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from services.intake.store.batches import PROGRESS_CHANNEL

log = logging.getLogger(__name__)
T = TypeVar("T")


class Progress:
    def __init__(self, database_url: str, *, poll_seconds: float = 1.0) -> None:
        self._database_url = database_url
        self._poll_seconds = poll_seconds
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        """Hold the LISTEN connection until `stopping`; reconnect after failures."""
        while not stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._database_url)
                await conn.add_listener(PROGRESS_CHANNEL, self._on_notify)
                self._wake_all()  # anything missed while disconnected: re-check now
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _, closed=closed: closed.set())
                stop_wait = asyncio.create_task(stopping.wait())
                closed_wait = asyncio.create_task(closed.wait())
                await asyncio.wait({stop_wait, closed_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                closed_wait.cancel()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("progress listener failed; reconnecting", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()

    async def wait_for(
        self, key: str, check: Callable[[], Awaitable[T | None]], seconds: float
    ) -> T | None:
        """`check()`'s first non-None answer, re-checked on every wake-up; None on timeout."""
        wake = asyncio.Event()
        self._waiters.setdefault(key, set()).add(wake)
        deadline = time.monotonic() + seconds
        try:
            while True:
                wake.clear()
                answer = await check()
                remaining = deadline - time.monotonic()
                if answer is not None or remaining <= 0:
                    return answer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(remaining, self._poll_seconds))
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[key]

    def _on_notify(self, _conn: object, _pid: int, _channel: str, key: object) -> None:
        for wake in self._waiters.get(str(key), ()):
            wake.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()
