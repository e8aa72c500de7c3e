"""Operator CLI for webhook signing secrets.

verity-notifier secret show TEAM_ID     -> the team's current `whsec_...` secret
verity-notifier secret rotate TEAM_ID   -> a new secret; the old one keeps signing for 24 h
"""

from __future__ import annotations

import argparse
import asyncio

from contracts.ids import normalize_id
from services.common.db import common_migrations, create_pool, migrate
from services.common.settings import CommonSettings
from services.notifier import secrets
from services.notifier.schema import MIGRATIONS

SCHEMA = "notifier"


async def run(action: str, team_id: str, settings: CommonSettings) -> str:
    pool = await create_pool(settings.database_url, SCHEMA, max_size=1)
    try:
        await migrate(pool, SCHEMA, [*common_migrations(), *MIGRATIONS])
        async with pool.acquire() as conn, conn.transaction():
            if action == "rotate":
                return await secrets.rotate(conn, team_id)
            return await secrets.current(conn, team_id)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verity-notifier", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    secret = commands.add_parser("secret", help="show or rotate a team's signing secret")
    secret.add_argument("action", choices=["show", "rotate"])
    secret.add_argument("team_id")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.action, str(normalize_id(args.team_id)), CommonSettings())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
