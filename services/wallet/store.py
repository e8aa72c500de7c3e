"""Persistence of wallets: the event stream, its projections, and the outbox.

`WalletProjection.apply` is the only code that writes the projection tables, for live
updates and for `rebuild` alike, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts.events import TOLERANT
from services.common import outbox
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.wallet.domain import (
    WALLET_EVENTS,
    BatchRejected,
    BatchReserved,
    LineCaptured,
    LineRefunded,
    LineReleased,
    ReservedLine,
    Wallet,
    WalletEvent,
    evolve,
)
from services.wallet.ledger import ledger_entries, published_events
from services.wallet.schema import PROJECTION_TABLES


def stream_id(team_id: str) -> str:
    return f"wallet-{team_id}"


def _decode(payload: Mapping[str, Any]) -> WalletEvent:
    event: WalletEvent = WALLET_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


EVENTS: EventStore[WalletEvent] = EventStore(_decode)


async def load(conn: Conn, team_id: str) -> Wallet:
    """The wallet as of its latest committed event (its snapshot row), or a new empty one."""
    state = await conn.fetchval("SELECT state FROM wallets WHERE team_id = $1", team_id)
    return Wallet.model_validate(state) if state is not None else Wallet(team_id=team_id)


async def open_lines(conn: Conn, batch_id: str) -> dict[str, ReservedLine]:
    """The batch's reserved files that are not settled yet, by detect id."""
    rows = await conn.fetch(
        "SELECT detect_id, line FROM reservation_lines WHERE batch_id = $1 AND NOT settled",
        batch_id,
    )
    return {r["detect_id"]: ReservedLine.model_validate(r["line"]) for r in rows}


async def captured_lines(conn: Conn, batch_id: str) -> dict[str, int]:
    """What each captured file of the batch still stands charged at (captures minus refunds)."""
    rows = await conn.fetch(
        "SELECT detect_id, sum(CASE kind WHEN 'capture' THEN amount_micros"
        "                          ELSE -amount_micros END)::bigint AS charged"
        " FROM ledger WHERE batch_id = $1 AND kind IN ('capture', 'refund')"
        " AND detect_id IS NOT NULL GROUP BY detect_id",
        batch_id,
    )
    return {r["detect_id"]: r["charged"] for r in rows if r["charged"] > 0}


class WalletProjection:
    tables: tuple[str, ...] = PROJECTION_TABLES

    async def apply(
        self, conn: Conn, recorded: Recorded[WalletEvent], before: Wallet | None = None
    ) -> None:
        """Project one event; `before` (the wallet just before it) saves a read when known."""
        event = recorded.event
        after = evolve(before or await load(conn, event.team_id), event)
        assert after.version == recorded.version, "projection out of step with the stream"
        await conn.execute(
            "INSERT INTO wallets AS w (team_id, version, state, balance_micros, reserved_micros,"
            "  available_micros, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (team_id) DO UPDATE SET version = excluded.version,"
            "  state = excluded.state, balance_micros = excluded.balance_micros,"
            "  reserved_micros = excluded.reserved_micros,"
            "  available_micros = excluded.available_micros, updated_at = excluded.updated_at",
            event.team_id, after.version, after.model_dump(mode="json"), after.balance_micros,
            after.reserved_micros, after.available_micros, event.occurred_at,
        )  # fmt: skip
        await conn.executemany(
            "INSERT INTO ledger (entry_id, team_id, wallet_version, kind, amount_micros,"
            "  balance_micros, reserved_micros, available_micros, batch_id, detect_id,"
            "  media_type, billed_seconds, reason, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            [
                (e.entry_id, event.team_id, after.version, e.kind, e.amount_micros,
                 after.balance_micros, after.reserved_micros, after.available_micros,
                 e.batch_id, e.detect_id, e.media_type, e.billed_seconds, e.reason,
                 event.occurred_at)
                for e in ledger_entries(event)
            ],
        )  # fmt: skip
        await _project_reservation(conn, event)


async def _project_reservation(conn: Conn, event: WalletEvent) -> None:
    match event:
        case BatchReserved() | BatchRejected():
            reserved = isinstance(event, BatchReserved)
            required = (
                event.total_micros if isinstance(event, BatchReserved) else event.required_micros
            )
            await conn.execute(
                "INSERT INTO reservations (batch_id, team_id, status, required_micros, files,"
                "  decided_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                event.batch_id, event.team_id, "open" if reserved else "rejected", required,
                len(event.lines), event.occurred_at,
            )  # fmt: skip
            if reserved:
                await conn.executemany(
                    "INSERT INTO reservation_lines (batch_id, detect_id, team_id, line)"
                    " VALUES ($1, $2, $3, $4)",
                    [(event.batch_id, line.detect_id, event.team_id, line.model_dump(mode="json"))
                     for line in event.lines],
                )  # fmt: skip
        case LineCaptured() | LineReleased():
            captured = event.amount_micros if isinstance(event, LineCaptured) else 0
            released = (
                event.released_micros if isinstance(event, LineCaptured) else event.amount_micros
            )
            await conn.execute(
                "UPDATE reservation_lines SET settled = true"
                " WHERE batch_id = $1 AND detect_id = $2",
                event.batch_id, event.detect_id,
            )  # fmt: skip
            await conn.execute(
                "UPDATE reservations SET captured_micros = captured_micros + $2,"
                "  released_micros = released_micros + $3, settled_files = settled_files + 1,"
                "  status = CASE WHEN settled_files + 1 < files THEN 'open' ELSE 'closed' END,"
                "  updated_at = $4 WHERE batch_id = $1",
                event.batch_id, captured, released, event.occurred_at,
            )  # fmt: skip
        case LineRefunded():
            await conn.execute(
                "UPDATE reservations SET captured_micros = captured_micros - $2, updated_at = $3"
                " WHERE batch_id = $1",
                event.batch_id, event.amount_micros, event.occurred_at,
            )  # fmt: skip


PROJECTION = WalletProjection()


async def record(
    conn: Conn,
    wallet: Wallet,
    events: Sequence[WalletEvent],
    causation_id: str | None,
) -> Wallet:
    """Append `events` after `wallet.version`, project them, and queue what others must learn.

    Raises ConcurrencyError when another writer moved the wallet first; the caller's
    transaction is still usable (the append runs in a savepoint).
    """
    recorded = await EVENTS.append(conn, stream_id(wallet.team_id), wallet.version, events)
    published = []
    for r in recorded:
        await PROJECTION.apply(conn, r, before=wallet)
        wallet = evolve(wallet, r.event)
        published.extend(published_events(r.event, wallet, causation_id))
    await outbox.enqueue(conn, published)
    return wallet
