"""Persistence of batches: their event streams, the read models, the outbox, the wake-ups.

`BatchProjection.apply` is the only code that writes `batches` and `detects`, live and in
`rebuild` alike. Every change a waiting request may care about also sends a NOTIFY on
`PROGRESS_CHANNEL` (delivered at commit), see services/intake/saga/progress.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from contracts import events as ev
from contracts.events import TOLERANT
from services.common import outbox
from services.common.db import Conn
from services.common.eventstore import EventStore, Recorded
from services.intake.domain.batch import (
    BATCH_EVENTS,
    CANCELLED_MESSAGE,
    PUBLISHED,
    Batch,
    BatchEvent,
    BatchOpened,
    DetectDeleted,
    MediaDeleted,
    replay,
)
from services.intake.domain.feedback import FeedbackEvent
from services.intake.domain.identity import IdentityEvent
from services.intake.domain.question import QuestionEvent
from services.intake.store import feedback, identities, questions

PROGRESS_CHANNEL = "intake_progress"
PROJECTION_TABLES = ("batches", "detects")
IntakeEvent = BatchEvent | IdentityEvent | FeedbackEvent | QuestionEvent
# every aggregate's events but the batch's, by type, with the projection that reads them
_OTHERS = (identities, feedback, questions)

# Renders the callback body of a batch that just ended, from the read model (api/views.py).
PayloadRenderer = Callable[[Conn, ev.BatchTerminal], Awaitable[dict[str, JsonValue]]]
# The public events (api/public_events.py) that recorded events cause, rendered likewise.
PublicRenderer = Callable[[Conn, Sequence[ev.Event]], Awaitable[list[outbox.Message]]]


async def no_public_events(conn: Conn, recorded: Sequence[ev.Event]) -> list[outbox.Message]:
    return []


def batch_key(batch_id: str) -> str:
    """The progress key a request waiting on a batch's wallet decision listens for."""
    return f"b{batch_id}"


def detect_key(detect_id: str) -> str:
    """The progress key a `Prefer: wait` request listens for."""
    return f"d{detect_id}"


def _decode(payload: Mapping[str, Any]) -> BatchEvent:
    event: BatchEvent = BATCH_EVENTS.validate_python(payload, extra=TOLERANT)
    return event


def _decode_any(payload: Mapping[str, Any]) -> IntakeEvent:
    for kind in _OTHERS:
        if payload.get("event_type") in kind.EVENT_TYPES:
            decoded: IntakeEvent = kind.decode(payload)
            return decoded
    return _decode(payload)


EVENTS: EventStore[BatchEvent] = EventStore(_decode)  # a batch's own stream
LOG: EventStore[IntakeEvent] = EventStore(_decode_any)  # the whole log, for rebuilds


async def load(conn: Conn, batch_id: str) -> Batch:
    return replay(batch_id, [r.event for r in await EVENTS.load(conn, batch_id)])


async def record(
    conn: Conn,
    batch: Batch,
    events: Sequence[BatchEvent],
    render: PayloadRenderer,
    public: PublicRenderer = no_public_events,
) -> None:
    """Append `events` after `batch.version`, project them, queue what intake publishes.

    A BatchTerminal goes last and gets its callback payload rendered from the read model the
    events before it produced, so the callback shows exactly what a GET would; the public
    events are rendered once every event is projected.
    Raises ConcurrencyError when another writer moved the stream first.
    """
    head = [e for e in events if not isinstance(e, ev.BatchTerminal)]
    tail = [e for e in events if isinstance(e, ev.BatchTerminal)]
    recorded = await EVENTS.append(conn, batch.batch_id, batch.version, head)
    for r in recorded:
        await PROJECTION.apply(conn, r)
    for terminal in tail:
        terminal = terminal.model_copy(update={"callback_payload": await render(conn, terminal)})
        version = batch.version + len(recorded)
        for r in await EVENTS.append(conn, batch.batch_id, version, [terminal]):
            await PROJECTION.apply(conn, r)
            recorded.append(r)
    published = [r.event for r in recorded if isinstance(r.event, PUBLISHED)]
    messages = [outbox.Message.of_event(e) for e in published]
    messages += await public(conn, [r.event for r in recorded if isinstance(r.event, ev.Event)])
    await outbox.enqueue_messages(conn, messages)


async def _notify(conn: Conn, *keys: str) -> None:
    await conn.executemany("SELECT pg_notify($1, $2)", [(PROGRESS_CHANNEL, key) for key in keys])


class BatchProjection:
    tables: tuple[str, ...] = PROJECTION_TABLES

    async def apply(self, conn: Conn, recorded: Recorded[BatchEvent]) -> None:
        e = recorded.event
        at = e.occurred_at
        match e:
            case BatchOpened():
                await conn.execute(
                    "INSERT INTO batches (batch_id, team_id, kind, status, created_at, updated_at)"
                    " VALUES ($1, $2, $3, 'new', $4, $4)",
                    e.batch_id, e.team_id, e.kind, at,
                )  # fmt: skip
            case ev.BatchRequested():
                await conn.execute(
                    "UPDATE batches SET status = 'reserving', total_files = $2, detect_ids = $3,"
                    "  options = $4, created_at = $5, updated_at = $5 WHERE batch_id = $1",
                    e.batch_id, len(e.files), [f.detect_id for f in e.files],
                    e.options.model_dump(mode="json"), at,
                )  # fmt: skip
            case ev.FundsReserved():
                await self._status(conn, e.batch_id, "processing", at, reserved=e.reserved_micros)
            case ev.FundsRejected():
                await self._status(conn, e.batch_id, "rejected", at, rejection=e)
            case ev.BatchAbandoned():
                await self._status(conn, e.batch_id, "abandoned", at)
            case ev.DetectRequested():
                await self._detect_requested(conn, e)
            case ev.DetectCompleted():
                await self._settle(
                    conn, e, "completed", result=e.result, analysed=e.analysed_seconds
                )
            case ev.DetectFailed():
                await self._settle(conn, e, "failed", code=e.error_code, message=e.error_message)
            case ev.BatchTerminal():
                await self._terminal(conn, e)
            case MediaDeleted():
                await conn.execute(
                    "UPDATE detects SET media_deleted = true, file_deleted_at = $2, updated_at = $2"
                    " WHERE detect_id = $1",
                    e.detect_id, at,
                )  # fmt: skip
            case DetectDeleted():
                await conn.execute("DELETE FROM detects WHERE detect_id = $1", e.detect_id)

    async def _status(
        self,
        conn: Conn,
        batch_id: str,
        status: str,
        at: object,
        *,
        reserved: int | None = None,
        rejection: ev.FundsRejected | None = None,
    ) -> None:
        figures = rejection.model_dump(mode="json") if rejection else None
        await conn.execute(
            "UPDATE batches SET status = $2, updated_at = $3,"
            "  reserved_micros = coalesce($4, reserved_micros), rejection = $5"
            " WHERE batch_id = $1",
            batch_id, status, at, reserved, figures,
        )  # fmt: skip
        await _notify(conn, batch_key(batch_id))

    async def _detect_requested(self, conn: Conn, e: ev.DetectRequested) -> None:
        f = e.file
        await conn.execute(
            "INSERT INTO detects (detect_id, team_id, batch_id, kind, position, filename,"
            "  media_type, duration_seconds, analysed_seconds, size_bytes, blob_key, options,"
            "  status, created_at, updated_at)"
            " SELECT $1, b.team_id, b.batch_id, b.kind, array_position(b.detect_ids, $1) - 1,"
            "  $3, $4, $5, $6, $7, $8, $9, 'processing', b.created_at, $10"
            " FROM batches b WHERE b.batch_id = $2",
            e.detect_id, e.batch_id, f.filename, f.media_type, f.duration_seconds,
            f.analysed_seconds, f.size_bytes, f.blob_key, e.options.model_dump(mode="json"),
            e.occurred_at,
        )  # fmt: skip

    async def _settle(
        self,
        conn: Conn,
        e: ev.DetectCompleted | ev.DetectFailed,
        status: str,
        *,
        result: dict[str, JsonValue] | None = None,
        analysed: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        await conn.execute(
            "UPDATE detects SET status = $2, result = $3,"
            "  analysed_seconds = coalesce($4, analysed_seconds), error_code = $5,"
            "  error_message = $6, updated_at = $7 WHERE detect_id = $1",
            e.detect_id, status, result, analysed, code, message, e.occurred_at,
        )  # fmt: skip
        counter = "completed_count" if status == "completed" else "failed_count"
        await conn.execute(
            f"UPDATE batches SET {counter} = {counter} + 1, updated_at = $2 WHERE batch_id = $1",
            e.batch_id,
            e.occurred_at,
        )
        await _notify(conn, detect_key(e.detect_id))

    async def _terminal(self, conn: Conn, e: ev.BatchTerminal) -> None:
        await conn.execute(
            "UPDATE batches SET status = $2, completed_count = $3, failed_count = $4,"
            "  updated_at = $5, finished_at = $5 WHERE batch_id = $1",
            e.batch_id, e.status, e.completed_count, e.failed_count, e.occurred_at,
        )  # fmt: skip
        if e.cancelled_detect_ids:
            await conn.execute(
                "UPDATE detects SET status = 'failed', error_code = 'cancelled',"
                "  error_message = $2, updated_at = $3 WHERE detect_id = ANY($1::text[])",
                list(e.cancelled_detect_ids), CANCELLED_MESSAGE, e.occurred_at,
            )  # fmt: skip
        await _notify(conn, batch_key(e.batch_id), *(detect_key(d) for d in e.cancelled_detect_ids))


class IntakeProjection:
    """Every read model of intake, for `rebuild`: each event goes to the projection of its kind."""

    tables: tuple[str, ...] = (
        *PROJECTION_TABLES, *(t for kind in _OTHERS for t in kind.PROJECTION.tables)
    )  # fmt: skip

    def __init__(self, batches: BatchProjection) -> None:
        self.batches = batches

    async def apply(self, conn: Conn, recorded: Recorded[IntakeEvent]) -> None:
        for kind in _OTHERS:
            if recorded.event.event_type in kind.EVENT_TYPES:
                await kind.PROJECTION.apply(conn, recorded)
                return
        await self.batches.apply(conn, recorded)  # type: ignore[arg-type]


PROJECTION = BatchProjection()
ALL_PROJECTIONS = IntakeProjection(PROJECTION)
