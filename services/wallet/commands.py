"""Carry out one wallet command: load, decide, record; again if another writer won the race."""

from __future__ import annotations

import asyncio
import random

from services.common.db import Conn
from services.common.eventstore import ConcurrencyError
from services.wallet import store
from services.wallet.domain import Command, Release, Wallet, WalletEvent, decide

MAX_ATTEMPTS = 50


async def execute(
    conn: Conn, team_id: str, command: Command, *, causation_id: str | None = None
) -> tuple[list[WalletEvent], Wallet]:
    """Decide `command` against the latest wallet and record the outcome, in `conn`'s transaction.

    Concurrent writers to one wallet race on its stream version; the loser reloads (it sees the
    winner's commit) and decides again, so two batches can never both spend the same money.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wallet = await store.load(conn, team_id)
        batch_id = getattr(command, "batch_id", None)
        lines = await store.open_lines(conn, batch_id) if batch_id else {}
        refunding = isinstance(command, Release) and command.refund_captured
        captured = await store.captured_lines(conn, batch_id) if batch_id and refunding else {}
        events = decide(wallet, command, lines, captured)
        if not events:
            return [], wallet
        try:
            return events, await store.record(conn, wallet, events, causation_id)
        except ConcurrencyError:
            if attempt == MAX_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # de-synchronise racers
    raise AssertionError("unreachable")  # pragma: no cover
