"""API-token authentication: every API request resolves to exactly one team.

Three spellings of one credential are accepted: `Bearer <token>` (ours, RFC 6750) and the two
that Resemble's clients send, `Token token=<token>` (the official Python and Node SDKs) and
`Token <token>`. Whatever the spelling, the token is looked up by its SHA-256 hash, so no
comparison of secrets happens in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from contracts import problems as p
from services.common.db import Pool
from services.intake.api.context import Intake
from services.intake.api.headers import remember_allowance
from services.intake.api.ratelimit import retry_after_header
from services.intake.errors import ApiError
from services.intake.store import tokens


@dataclass(frozen=True)
class Team:
    team_id: str
    token_id: str  # who in the team: feedback is per token, as Resemble's is per user


def token_from_header(header: str) -> str | None:
    """The token of an Authorization header in one of the accepted spellings, else None."""
    scheme, _, rest = header.strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "token" and rest[:6].lower() == "token=":
        rest = rest[6:].strip().removeprefix('"').removesuffix('"')
    elif scheme.lower() not in ("bearer", "token"):
        return None
    if not rest or any(c.isspace() for c in rest) or not rest.isprintable():
        return None
    return rest


async def authenticate(
    request: Request[Any, Any, Any], pool: NamedDependency[Pool], intake: NamedDependency[Intake]
) -> Team:
    """401 when the header is missing or malformed, 429 over the token's rate, 403 when the
    token is unknown or revoked. The rate limit comes first so that a flood of requests,
    valid token or not, never reaches the database."""
    token = token_from_header(request.headers.get("authorization", ""))
    if token is None:
        raise ApiError(
            p.UNAUTHENTICATED,
            "send `Authorization: Bearer <api token>` (or `Token token=<api token>`)",
            headers={"WWW-Authenticate": 'Bearer realm="verity"'},
        )
    allowance = intake.limiter.acquire(tokens.hash_token(token))
    remember_allowance(request.scope, allowance, intake.limiter.policy_header())
    if allowance.wait > 0:
        raise ApiError(
            p.RATE_LIMITED,
            f"over {intake.settings.rate_limit_per_second:g} requests per second for this token",
            headers={"Retry-After": retry_after_header(allowance.wait)},
        )
    async with pool.acquire() as conn:
        found = await tokens.team_for_token(conn, token)
    if found is None:
        raise ApiError(p.FORBIDDEN, "this API token is unknown or revoked")
    return Team(*found)
