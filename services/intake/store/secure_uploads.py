"""Secure uploads: a stored file that waits for the one /detect that names its media token.

A row is written once the file is stored; `claim` hands it to one batch, atomically, and only
before it expires; a second claim, another team's claim or a late one is refused with the
reason. Expired unclaimed uploads are deleted with their blobs (`expired`); claimed rows stay a
day past their expiry so that a replayed token is told it was used rather than unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.common.db import Conn

Refusal = Literal["unknown", "expired", "used"]
KEEP_CLAIMED = "interval '1 day'"


@dataclass(frozen=True)
class Upload:
    upload_id: str
    blob_key: str
    filename: str
    size_bytes: int
    sha256: str
    expires_at: datetime


async def record(conn: Conn, team_id: str, upload: Upload) -> None:
    await conn.execute(
        "INSERT INTO secure_uploads (upload_id, team_id, blob_key, filename, size_bytes, sha256,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        upload.upload_id, team_id, upload.blob_key, upload.filename, upload.size_bytes,
        upload.sha256, upload.expires_at,
    )  # fmt: skip


async def claim(conn: Conn, team_id: str, upload_id: str, batch_id: str) -> Upload | Refusal:
    """The upload, now used by `batch_id`; or why it cannot be."""
    row = await conn.fetchrow(
        "UPDATE secure_uploads SET used_at = now(), used_by = $3"
        " WHERE upload_id = $1 AND team_id = $2 AND used_at IS NULL AND expires_at > now()"
        " RETURNING upload_id, blob_key, filename, size_bytes, sha256, expires_at",
        upload_id, team_id, batch_id,
    )  # fmt: skip
    if row is not None:
        return Upload(**dict(row))
    state = await conn.fetchrow(
        "SELECT used_at FROM secure_uploads WHERE upload_id = $1 AND team_id = $2",
        upload_id, team_id,
    )  # fmt: skip
    if state is None:
        return "unknown"
    return "used" if state["used_at"] is not None else "expired"


async def expired(conn: Conn) -> list[str]:
    """Forget expired uploads: the blob keys of those never claimed, to be deleted."""
    rows = await conn.fetch(
        "DELETE FROM secure_uploads WHERE used_at IS NULL AND expires_at < now() RETURNING blob_key"
    )
    await conn.execute(
        "DELETE FROM secure_uploads"
        f" WHERE used_at IS NOT NULL AND expires_at < now() - {KEEP_CLAIMED}"
    )
    return [r["blob_key"] for r in rows]


async def known(conn: Conn, upload_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT upload_id FROM secure_uploads WHERE upload_id = ANY($1::text[])", upload_ids
    )
    return {r["upload_id"] for r in rows}
