"""Persistence of identities: their streams in intake's event log, the `identities` read model,
the search answers, and the wake-ups of requests waiting on either.

`IdentityProjection.apply` is the only writer of `identities`, live and in `rebuild` alike
(store.PROJECTION routes identity events here). Search answers (`voiceprint_answers`) are not
state: a query's voiceprint, kept until the waiting request has read it, then deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts import events as ev
from contracts.events import TOLERANT
from services.common.blobstore import BlobStore
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.intake.domain import identity as domain
from services.intake.domain.matching import Saved
from services.intake.store.streams import decide_and_record

PROGRESS_CHANNEL = "intake_progress"  # the channel of store/batches.py and saga/progress.py


def identity_key(identity_id: str) -> str:
    return f"i{identity_id}"


def answer_key(request_id: str) -> str:
    return f"v{request_id}"


def decode(payload: Mapping[str, Any]) -> domain.IdentityEvent:
    event: domain.IdentityEvent = domain.IDENTITY_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


IDENTITY_EVENTS: EventStore[domain.IdentityEvent] = EventStore(decode)
EVENT_TYPES = frozenset(t.model_fields["event_type"].default for t in domain.IDENTITY_EVENT_TYPES)


async def _notify(conn: Conn, key: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", PROGRESS_CHANNEL, key)


@dataclass(frozen=True)
class Identities:
    """The write side of identities, shared by the HTTP handlers and the consumer."""

    blobs: BlobStore

    async def execute(self, conn: Conn, identity_id: str, command: domain.Command) -> bool:
        """Decide and record `command` in `conn`'s transaction; False when it changed nothing."""
        identity, events = await decide_and_record(
            conn, IDENTITY_EVENTS, domain.stream_id(identity_id),
            lambda recorded: domain.replay(identity_id, recorded),
            lambda identity: domain.decide(identity, command),
            PROJECTION.apply, published=(ev.VoiceprintRequested,),
        )  # fmt: skip
        if (sample := domain.sample_to_delete(identity, events)) is not None:
            await self.blobs.delete(sample)
        return bool(events)


class IdentityProjection:
    tables: tuple[str, ...] = ("identities",)

    async def apply(self, conn: Conn, recorded: Recorded[domain.IdentityEvent]) -> None:
        e = recorded.event
        match e:
            case domain.IdentityCreated():
                await conn.execute(
                    "INSERT INTO identities (identity_id, team_id, name, status, created_at,"
                    "  updated_at) VALUES ($1, $2, $3, 'processing', $4, $4)",
                    e.identity_id, e.team_id, e.name, e.occurred_at,
                )  # fmt: skip
            case ev.VoiceprintComputed():
                await conn.execute(
                    "UPDATE identities SET status = 'ready', embedding = $2, speech_seconds = $3,"
                    "  same_speaker = $4, updated_at = $5 WHERE identity_id = $1",
                    e.request_id, list(e.embedding), e.speech_seconds,
                    e.same_speaker.model_dump(mode="json"), e.occurred_at,
                )  # fmt: skip
                await _notify(conn, identity_key(e.request_id))
            case ev.VoiceprintFailed():
                await conn.execute(
                    "UPDATE identities SET status = 'failed', error_code = $2, error_message = $3,"
                    "  updated_at = $4 WHERE identity_id = $1",
                    e.request_id, e.error_code, e.error_message, e.occurred_at,
                )  # fmt: skip
                await _notify(conn, identity_key(e.request_id))
            case domain.IdentityDeleted():
                await conn.execute("DELETE FROM identities WHERE identity_id = $1", e.identity_id)


PROJECTION = IdentityProjection()


async def saved_voiceprints(conn: Conn, team_id: str) -> list[Saved]:
    rows = await conn.fetch(
        "SELECT identity_id, name, embedding FROM identities"
        " WHERE team_id = $1 AND status = 'ready' ORDER BY created_at, identity_id",
        team_id,
    )
    return [Saved(r["identity_id"], r["name"], r["embedding"]) for r in rows]


async def record_answer(conn: Conn, answer: ev.VoiceprintComputed | ev.VoiceprintFailed) -> None:
    """A search query's voiceprint (or why there is none), for the request waiting on it."""
    found: tuple[list[float] | None, dict[str, Any] | None, str | None, str | None]
    if isinstance(answer, ev.VoiceprintComputed):
        found = (list(answer.embedding), answer.same_speaker.model_dump(mode="json"), None, None)
    else:
        found = (None, None, answer.error_code, answer.error_message)
    await conn.execute(
        "INSERT INTO voiceprint_answers (request_id, team_id, embedding, same_speaker,"
        "  error_code, error_message) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (request_id) DO NOTHING",
        answer.request_id, answer.team_id, *found,
    )  # fmt: skip
    await _notify(conn, answer_key(answer.request_id))
    # answers nobody waited for (the request timed out first) do not pile up
    await conn.execute(
        "DELETE FROM voiceprint_answers WHERE created_at < now() - interval '1 hour'"
    )
