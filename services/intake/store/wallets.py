"""Intake's read model of team wallets, fed by the wallet's LedgerEntryRecorded events.

Choice (docs/pricing.md): intake serves `/account/*` from this projection rather than calling
the wallet, because services talk only through Kafka. It lags the wallet by one event hop.
`account_ledger` keeps every entry; `account_wallets` is derived from it (`rebuild_wallets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from contracts import events as ev
from services.common.db import Conn

GROUP = "intake-account"


async def on_ledger_entry(conn: Conn, event: ev.Event) -> None:
    if not isinstance(event, ev.LedgerEntryRecorded):
        return
    await conn.execute(
        "INSERT INTO account_ledger (entry_id, team_id, wallet_version, kind, amount_micros,"
        "  balance_micros, reserved_micros, available_micros, batch_id, detect_id, media_type,"
        "  billed_seconds, reason, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (entry_id) DO NOTHING",
        event.entry_id, event.team_id, event.wallet_version, event.kind, event.amount_micros,
        event.balance_micros, event.reserved_micros, event.available_micros, event.batch_id,
        event.detect_id, event.media_type, event.billed_seconds, event.reason, event.occurred_at,
    )  # fmt: skip
    await _upsert_wallet(conn, event.team_id)


async def _upsert_wallet(conn: Conn, team_id: str) -> None:
    """Keep the figures of the highest wallet version seen, whatever order entries came in."""
    await conn.execute(
        "INSERT INTO account_wallets AS w (team_id, wallet_version, balance_micros,"
        "  reserved_micros, available_micros, updated_at)"
        " SELECT team_id, wallet_version, balance_micros, reserved_micros, available_micros,"
        "        recorded_at FROM account_ledger WHERE team_id = $1"
        " ORDER BY wallet_version DESC LIMIT 1"
        " ON CONFLICT (team_id) DO UPDATE SET wallet_version = excluded.wallet_version,"
        "  balance_micros = excluded.balance_micros, reserved_micros = excluded.reserved_micros,"
        "  available_micros = excluded.available_micros, updated_at = excluded.updated_at"
        " WHERE w.wallet_version < excluded.wallet_version",
        team_id,
    )


async def rebuild_wallets(conn: Conn) -> None:
    await conn.execute("TRUNCATE account_wallets")
    for row in await conn.fetch("SELECT DISTINCT team_id FROM account_ledger"):
        await _upsert_wallet(conn, row["team_id"])


@dataclass(frozen=True)
class WalletFigures:
    balance_micros: int
    reserved_micros: int
    available_micros: int
    updated_at: datetime | None


async def wallet_figures(conn: Conn, team_id: str) -> WalletFigures:
    row = await conn.fetchrow(
        "SELECT balance_micros, reserved_micros, available_micros, updated_at"
        " FROM account_wallets WHERE team_id = $1",
        team_id,
    )
    if row is None:  # a team that was never credited
        return WalletFigures(0, 0, 0, None)
    return WalletFigures(
        row["balance_micros"], row["reserved_micros"], row["available_micros"], row["updated_at"]
    )


async def recent_entries(conn: Conn, team_id: str, limit: int) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT * FROM account_ledger WHERE team_id = $1"
        " ORDER BY wallet_version DESC, kind LIMIT $2",
        team_id,
        limit,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True)
class UsageLine:
    media_type: str
    files: int
    seconds: int
    charged_micros: int


async def usage(conn: Conn, team_id: str, start: date, end: date) -> list[UsageLine]:
    """What was charged between the start of `start` and the end of `end` (UTC), by media."""
    rows = await conn.fetch(
        "SELECT media_type, count(*) AS files,"
        "       coalesce(sum(billed_seconds), 0)::bigint AS seconds,"
        "       sum(amount_micros)::bigint AS charged"
        " FROM account_ledger c WHERE team_id = $1 AND kind = 'capture'"
        "   AND NOT EXISTS (SELECT 1 FROM account_ledger r WHERE r.kind = 'refund'"
        "                   AND r.batch_id = c.batch_id AND r.detect_id = c.detect_id)"
        # the day after `end` computed by PostgreSQL: Python's dates end at 9999-12-31
        "   AND recorded_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'"
        "   AND recorded_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'"
        " GROUP BY media_type ORDER BY media_type",
        team_id,
        start,
        end,
    )
    return [UsageLine(r["media_type"], r["files"], r["seconds"], r["charged"]) for r in rows]
