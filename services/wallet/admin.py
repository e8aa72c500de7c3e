"""Operator CLI for team wallets: credit, debit (each with a reason: a ledger entry), show.

    verity-wallet credit TEAM_ID 25.00 --reason "invoice 2026-117"
    verity-wallet debit TEAM_ID 0.50 --reason "goodwill reversal"
    verity-wallet show TEAM_ID
    verity-wallet rebuild                  -> replay every wallet event into empty projections

Amounts are dollars with up to six decimals (exact: converted to micro-dollars without floats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from decimal import Decimal, InvalidOperation

from contracts.ids import normalize_id
from services.common.db import common_migrations, create_pool, migrate
from services.common.projections import rebuild
from services.wallet import store
from services.wallet.commands import execute
from services.wallet.domain import Credit, Debit, WalletError
from services.wallet.schema import MIGRATIONS
from services.wallet.settings import WalletSettings

SCHEMA = "wallet"


def dollars_to_micros(text: str) -> int:
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from exc
    micros = amount * 1_000_000
    if micros != micros.to_integral_value() or micros <= 0:
        raise argparse.ArgumentTypeError("amounts are positive, with at most 6 decimals")
    return int(micros)


async def run(args: argparse.Namespace, settings: WalletSettings) -> int:
    team_id = str(normalize_id(getattr(args, "team_id", "0" * 32)))
    pool = await create_pool(settings.database_url, SCHEMA, max_size=1)
    try:
        await migrate(pool, SCHEMA, [*common_migrations(), *MIGRATIONS])
        if args.command == "rebuild":  # e.g. after the snapshot's shape changed
            replayed = await rebuild(pool, store.EVENTS, store.PROJECTION)
            print(json.dumps({"replayed_events": replayed}))
            return 0
        async with pool.acquire() as conn, conn.transaction():
            if args.command == "show":
                wallet = await store.load(conn, team_id)
            else:
                kind = Credit if args.command == "credit" else Debit
                command = kind(amount_micros=args.amount, reason=args.reason)
                _, wallet = await execute(conn, team_id, command)
    except WalletError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    figures = {
        "team_id": team_id,
        "balance_micros": wallet.balance_micros,
        "reserved_micros": wallet.reserved_micros,
        "available_micros": wallet.available_micros,
    }
    print(json.dumps(figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verity-wallet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("credit", "debit"):
        sub = commands.add_parser(name)
        sub.add_argument("team_id")
        sub.add_argument("amount", type=dollars_to_micros, help="dollars, e.g. 25.00")
        sub.add_argument("--reason", required=True)
    commands.add_parser("show").add_argument("team_id")
    commands.add_parser("rebuild", help="rebuild the projections from the wallet events")
    args = parser.parse_args(argv)
    return asyncio.run(run(args, WalletSettings()))


if __name__ == "__main__":
    raise SystemExit(main())
