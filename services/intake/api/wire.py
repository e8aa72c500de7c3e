"""Wire formats of the public API: envelopes, money in cents, timestamps (API.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.ids import MICROS_PER_CENT


def cents(micros: int) -> float:
    """Cents as a JSON number, exact to the micro-dollar (at most 4 decimals)."""
    return micros / MICROS_PER_CENT


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds: 2026-11-24T10:30:00.000Z."""
    if value is None:
        return None
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def item(body: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "item": body}
