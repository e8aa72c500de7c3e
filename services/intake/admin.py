"""Operator CLI for teams and tokens (never exposed through the public API).

verity-admin team create NAME          -> prints the team id
verity-admin token create TEAM_ID      -> prints the token once
verity-admin token revoke TOKEN_ID
verity-admin demo                      -> a new team and token, as `./dev up` prints them
verity-admin rebuild                   -> rebuild every read model from `events`
verity-admin feedback export [--team T] [--out F]  -> feedback as JSON lines, for retraining
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.common.db import common_migrations, create_pool, migrate
from services.common.projections import rebuild
from services.common.settings import CommonSettings
from services.intake.store import batches, feedback, tokens
from services.intake.store.schema import MIGRATIONS

SCHEMA = "intake"


async def run(args: argparse.Namespace, settings: CommonSettings) -> int:
    pool = await create_pool(settings.database_url, SCHEMA, max_size=1)
    try:
        await migrate(pool, SCHEMA, [*common_migrations(), *MIGRATIONS])
        if args.command == "rebuild":
            replayed = await rebuild(pool, batches.LOG, batches.ALL_PROJECTIONS)
            print(f"replayed {replayed} events into {', '.join(batches.PROJECTION_TABLES)}")
            return 0
        if args.command == "feedback":
            lines = await _export(pool, args.team)
            await asyncio.to_thread(_write, args.out, lines)
            print(f"exported {len(lines)} answers", file=sys.stderr)
            return 0
        async with pool.acquire() as conn, conn.transaction():
            if args.command == "demo":
                team_id = await tokens.create_team(conn, args.name)
                issued = await tokens.issue_token(conn, team_id, "demo")
                print(f"team_id={team_id}")
                print(f"token={issued.token}")
            elif args.command == "team":
                print(await tokens.create_team(conn, args.name))
            elif args.command == "token" and args.action == "create":
                issued = await tokens.issue_token(conn, args.target, args.label)
                print(f"token_id={issued.token_id}")
                print(f"token={issued.token}")
            elif not await tokens.revoke_token(conn, args.target):
                print(f"no live token {args.target}", file=sys.stderr)
                return 1
    finally:
        await pool.close()
    return 0


async def _export(pool: Any, team_id: str | None) -> list[str]:
    """One JSON object per answer: the label it gives and what the model said (store/feedback)."""
    async with pool.acquire() as conn:
        return [
            json.dumps(row, default=str, sort_keys=True) + "\n"
            async for row in feedback.export(conn, team_id)
        ]


def _write(path: str, lines: list[str]) -> None:
    if path == "-":
        sys.stdout.writelines(lines)
        return
    with open(path, "w") as out:
        out.writelines(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verity-admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    team = commands.add_parser("team", help="manage teams")
    team.add_argument("action", choices=["create"])
    team.add_argument("name")
    token = commands.add_parser("token", help="manage API tokens")
    token.add_argument("action", choices=["create", "revoke"])
    token.add_argument("target", help="TEAM_ID for create, TOKEN_ID for revoke")
    token.add_argument("--label", default="")
    demo = commands.add_parser("demo", help="create a demo team and print a token for it")
    demo.add_argument("--name", default="demo")
    commands.add_parser("rebuild", help="rebuild the batch and detect read models from events")
    answers = commands.add_parser("feedback", help="feedback on detects, for retraining")
    answers.add_argument("action", choices=["export"])
    answers.add_argument("--team", default=None, help="only this team's (default: every team)")
    answers.add_argument("--out", default="-", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args, CommonSettings()))


if __name__ == "__main__":
    raise SystemExit(main())
