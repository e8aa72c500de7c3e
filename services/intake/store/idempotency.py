"""Idempotency-Key on POST (API.md "Idempotency").

The request's fingerprint is computed after the upload was stored and hashed (every field, and
every file's name, size and sha256), so two uploads of the same bytes match however the client
chunked them. A key is bound when its request begins (`claim`) and keeps the response only if
that was a success (`remember`); a failed request (400, 402, 413, 503...) releases the key, so
the client can fix the cause and retry with the same key. Keys expire after 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from contracts import problems as p
from services.common.db import Conn
from services.intake.errors import ApiError

TTL_SQL = "interval '24 hours'"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: JsonValue
    headers: dict[str, str]


def fingerprint(method: str, path: str, parts: Sequence[object]) -> str:
    canonical = json.dumps([method, path, *parts], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            p.VALIDATION,
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            errors={"Idempotency-Key": ["invalid"]},
        )
    return key


async def claim(conn: Conn, team_id: str, key: str, fp: str) -> Stored | None:
    """Bind `key` to this request, or return the response of the first one.

    Raises 422 when the key belongs to a different request and 409 while the first request
    with this key is still running.
    """
    await conn.execute(
        f"DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2"
        f" AND created_at < now() - {TTL_SQL}",
        team_id,
        key,
    )
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (team_id, key, fingerprint) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        team_id,
        key,
        fp,
    )
    if inserted:
        return None
    row = await conn.fetchrow(
        "SELECT fingerprint, status_code, body, headers FROM idempotency_keys"
        " WHERE team_id = $1 AND key = $2",
        team_id,
        key,
    )
    if row is None:  # released between our insert and select: treat as a concurrent request
        raise ApiError(p.CONFLICT, "a request with this Idempotency-Key is in progress; retry")
    if row["fingerprint"] != fp:
        raise ApiError(
            p.IDEMPOTENCY_MISMATCH,
            "this Idempotency-Key was used with a different request",
            errors={"Idempotency-Key": ["reused with a different request"]},
        )
    if row["status_code"] is None:
        raise ApiError(
            p.CONFLICT,
            "a request with this Idempotency-Key is still in progress; retry later",
            headers={"Retry-After": "1"},
        )
    return Stored(row["status_code"], row["body"], dict(row["headers"]))


async def remember(conn: Conn, team_id: str, key: str, response: Stored) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, body = $4, headers = $5"
        " WHERE team_id = $1 AND key = $2",
        team_id,
        key,
        response.status_code,
        response.body,
        response.headers,
    )


async def release(conn: Conn, team_id: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2 AND status_code IS NULL",
        team_id,
        key,
    )
