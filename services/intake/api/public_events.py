"""Intake's public events: the detect and batch items other teams read from Kafka.

When a recorded event makes a detect or a batch terminal, the item a client would GET at that
moment is rendered from the read model, checked against its public model and queued in the
same transaction as the state change (`store.batches.record`), so a public event leaves if and
only if the change committed. contracts/public.py has the rules; docs/events.md the guide.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue, ValidationError

from contracts import events as ev
from contracts import public
from services.common import metrics
from services.common.db import Conn
from services.common.outbox import Message
from services.intake.api.links import Links
from services.intake.api.views import detect_item

log = logging.getLogger(__name__)
Mode = Literal["off", "shared", "per_team"]
SCHEMAS_PATH = "/events/schemas"  # where intake serves contracts/schemas/public (api/schemas.py)
_IDS = uuid.UUID("5f0e3c1a-9b2d-4e8f-a7c6-1d2e3f405162")  # namespace of the derived ce_ids

# Makes sure a team's own topics exist before its first event (mode `per_team`).
TeamTopics = Callable[[str], Awaitable[None]]


async def _nothing_to_create(team_id: str) -> None:
    return None


@dataclass
class PublicEvents:
    """Renders the public events that recorded batch events cause."""

    links: Links
    mode: Mode = "shared"
    team_topics: TeamTopics = _nothing_to_create
    _ready_teams: set[str] = field(default_factory=set)

    async def __call__(self, conn: Conn, recorded: Sequence[ev.Event]) -> list[Message]:
        if self.mode == "off":
            return []
        messages: list[Message] = []
        for event in recorded:
            match event:
                case ev.DetectCompleted() | ev.DetectFailed():
                    messages.append(await self._detection(conn, event, event.detect_id))
                case ev.BatchTerminal():
                    for detect_id in event.cancelled_detect_ids:
                        messages.append(await self._detection(conn, event, detect_id))
                    if batch := await self._batch(event):
                        messages.append(batch)
        if messages and self.mode == "per_team":
            await self._ensure_team(recorded[0].team_id)
        return messages

    async def _detection(self, conn: Conn, cause: ev.Event, detect_id: str) -> Message:
        row = await conn.fetchrow("SELECT * FROM detects WHERE detect_id = $1", detect_id)
        assert row is not None, "a settled detect has a read model row"
        item = detect_item(dict(row), self.links)
        kind = public.DETECT_COMPLETED if item["status"] == "completed" else public.DETECT_FAILED
        return self._message(kind, cause, detect_id, item, "/api/v2/detect")

    async def _batch(self, terminal: ev.BatchTerminal) -> Message | None:
        """A batch's item, as its callback has it; a single detect has no batch to show."""
        payload = terminal.callback_payload or {}
        item = payload.get("item")
        if not isinstance(item, dict) or "detect_uuids" not in item:
            return None
        return self._message(
            public.BATCH_FINISHED, terminal, terminal.batch_id, item, "/api/v2/detect/batch"
        )

    def _message(
        self,
        kind: public.PublicEvent,
        cause: ev.Event,
        subject: str,
        item: dict[str, JsonValue],
        path: str,
    ) -> Message:
        _check(kind, item)
        # stable for this cause: a relay that publishes a row twice sends the same ce_id
        event_id = uuid.uuid5(_IDS, f"{cause.event_id}/{kind.type}/{subject}").hex
        topic = kind.topic
        if self.mode == "per_team":
            topic = public.per_team_topic(topic, cause.team_id)
        headers = public.cloudevent_headers(
            kind,
            event_id=event_id,
            source=f"{self.links.public_url}{path}",
            subject=subject,
            time=cause.occurred_at,
            schema_base=f"{self.links.public_url}{SCHEMAS_PATH}",
            team_id=cause.team_id,
        )
        body = json.dumps(item, separators=(",", ":")).encode()
        return Message(topic, subject, event_id, kind.type, body, headers)

    async def _ensure_team(self, team_id: str) -> None:
        if team_id not in self._ready_teams:
            await self.team_topics(team_id)
            self._ready_teams.add(team_id)


def _check(kind: public.PublicEvent, item: dict[str, JsonValue]) -> None:
    """Hold the item to its public model. One that breaks it is still published: a consumer
    that ignores what it does not know copes with a bad field better than with a missing
    event, and refusing it here would stall the batch. The tests hold it strictly."""
    try:
        kind.model.checked(item)
    except ValidationError as exc:
        metrics.PUBLIC_EVENTS.labels(kind.type, "false").inc()
        log.error(
            "public event breaks its schema",
            extra={"fields": {"type": kind.type, "error": str(exc)}},
        )
    else:
        metrics.PUBLIC_EVENTS.labels(kind.type, "true").inc()
