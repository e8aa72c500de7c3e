"""Bearer-token authentication: every API request resolves to exactly one team."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from contracts import problems as p
from services.common.db import Pool
from services.intake.api.context import Intake
from services.intake.api.ratelimit import retry_after_header
from services.intake.errors import ApiError
from services.intake.store import tokens


@dataclass(frozen=True)
class Team:
    team_id: str


async def authenticate(
    request: Request[Any, Any, Any], pool: NamedDependency[Pool], intake: NamedDependency[Intake]
) -> Team:
    """401 when the header is missing or malformed, 429 over the token's rate, 403 when the
    token is unknown or revoked. The rate limit comes first so that a flood of requests,
    valid token or not, never reaches the database."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(
            p.UNAUTHENTICATED,
            "send `Authorization: Bearer <api token>`",
            headers={"WWW-Authenticate": 'Bearer realm="verity"'},
        )
    wait = intake.limiter.acquire(tokens.hash_token(token))
    if wait > 0:
        raise ApiError(
            p.RATE_LIMITED,
            f"over {intake.settings.rate_limit_per_second:g} requests per second for this token",
            headers={"Retry-After": retry_after_header(wait)},
        )
    async with pool.acquire() as conn:
        team_id = await tokens.team_for_token(conn, token)
    if team_id is None:
        raise ApiError(p.FORBIDDEN, "this API token is unknown or revoked")
    return Team(team_id)
