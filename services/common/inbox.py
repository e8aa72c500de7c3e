"""Consumer-side dedupe: a group's effects and its "processed" mark commit together."""

from __future__ import annotations

from services.common.db import Conn


async def claim(conn: Conn, consumer_group: str, event_id: str) -> bool:
    """Mark `event_id` processed by `consumer_group` in the caller's transaction.

    Returns False when it was processed before: the caller must then do nothing. Two
    concurrent deliveries of one event serialise on the primary key; the second sees False.
    """
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer_group, event_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer_group,
        event_id,
    )
    return bool(inserted)
