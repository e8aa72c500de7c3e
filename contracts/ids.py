"""Identifiers and shared value types used in every contract."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field


def new_id() -> str:
    """A fresh identifier in the public format: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def normalize_id(value: object) -> object:
    """Accept ids with dashes or upper case (API.md), store them in one canonical form."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, str):
        return value.replace("-", "").lower()
    return value


ID_PATTERN = re.compile(r"[0-9a-f]{32}")
Id = Annotated[str, BeforeValidator(normalize_id), Field(pattern=rf"^{ID_PATTERN.pattern}$")]
"""A resource or event identifier: a UUID written as 32 lowercase hex characters."""

Micros = Annotated[int, Field(ge=0)]
"""Money inside the system: integer micro-dollars (1 cent = 10,000 micros). Never a float."""

MICROS_PER_CENT = 10_000


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)
