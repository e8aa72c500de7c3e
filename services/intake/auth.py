"""Bearer-token authentication: every API request resolves to exactly one team."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from contracts import problems as p
from services.common.db import Pool
from services.intake import tokens
from services.intake.errors import ApiError


@dataclass(frozen=True)
class Team:
    team_id: str


async def authenticate(request: Request[Any, Any, Any], pool: NamedDependency[Pool]) -> Team:
    """401 when the header is missing or malformed, 403 when the token is unknown or revoked."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(
            p.UNAUTHENTICATED,
            "send `Authorization: Bearer <api token>`",
            headers={"WWW-Authenticate": 'Bearer realm="verity"'},
        )
    async with pool.acquire() as conn:
        team_id = await tokens.team_for_token(conn, token)
    if team_id is None:
        raise ApiError(p.FORBIDDEN, "this API token is unknown or revoked")
    return Team(team_id)
