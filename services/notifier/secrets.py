"""Per-team webhook signing secrets: created on first use, shown and rotated by the operator."""

from __future__ import annotations

import base64
import secrets as random
from datetime import datetime, timedelta

from services.common.db import Conn

PREFIX = "whsec_"
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(32)).decode()


async def current(conn: Conn, team_id: str) -> str:
    """The team's secret, created on first use (concurrent first uses agree on one)."""
    await conn.execute(
        "INSERT INTO team_secrets (team_id, secret, rotated_at) VALUES ($1, $2, now())"
        " ON CONFLICT (team_id) DO NOTHING",
        team_id,
        new_secret(),
    )
    secret: str = await conn.fetchval("SELECT secret FROM team_secrets WHERE team_id = $1", team_id)
    return secret


async def signing(conn: Conn, team_id: str, now: datetime) -> list[str]:
    """Secrets to sign with now: the current one, and the previous one during its overlap."""
    primary = await current(conn, team_id)
    row = await conn.fetchrow(
        "SELECT previous_secret, previous_until FROM team_secrets WHERE team_id = $1", team_id
    )
    if row and row["previous_secret"] and row["previous_until"] > now:
        return [primary, row["previous_secret"]]
    return [primary]


async def rotate(conn: Conn, team_id: str) -> str:
    await current(conn, team_id)
    fresh = new_secret()
    await conn.execute(
        "UPDATE team_secrets SET previous_secret = secret, previous_until = now() + $2,"
        " secret = $3, rotated_at = now() WHERE team_id = $1",
        team_id,
        ROTATION_OVERLAP,
        fresh,
    )
    return fresh
