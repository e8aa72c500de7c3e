"""API tokens: minted once, stored as hashes, looked up per request, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from contracts.ids import new_id
from services.common.db import Conn

TOKEN_PREFIX = "vrt_"


def mint_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    team_id: str
    token: str  # shown once, never stored


async def create_team(conn: Conn, name: str) -> str:
    team_id = new_id()
    await conn.execute("INSERT INTO teams (id, name) VALUES ($1, $2)", team_id, name)
    return team_id


async def issue_token(conn: Conn, team_id: str, label: str = "") -> IssuedToken:
    token = mint_token()
    token_id = new_id()
    await conn.execute(
        "INSERT INTO api_tokens (id, team_id, token_hash, label) VALUES ($1, $2, $3, $4)",
        token_id,
        team_id,
        hash_token(token),
        label,
    )
    return IssuedToken(token_id, team_id, token)


async def revoke_token(conn: Conn, token_id: str) -> bool:
    status = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return bool(status == "UPDATE 1")


async def team_for_token(conn: Conn, token: str) -> tuple[str, str] | None:
    """(team id, token id) of a live token; None for unknown or revoked tokens."""
    row = await conn.fetchrow(
        "SELECT team_id, id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    return None if row is None else (row["team_id"], row["id"])
