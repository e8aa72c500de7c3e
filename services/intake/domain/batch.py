"""The batch aggregate: pure `decide` and `evolve`, no I/O.

Every upload becomes a batch (a single `POST /detect` is a batch of one, `kind="single"`), with
one event stream per batch. Its life:

    BatchRequested --FundsReserved--> processing --every detect terminal--> completed
          |                              |                                  partially_failed
          +--FundsRejected--> rejected   +--Cancel--> cancelled             failed
          +--Abandon (no answer in time)--> abandoned

The stream holds what intake decided (BatchRequested, DetectRequested, BatchTerminal,
BatchAbandoned, and its own MediaDeleted / DetectDeleted) and copies of the other services'
decisions that moved it (FundsReserved/Rejected from the wallet, DetectCompleted/Failed from
the detector). A late or repeated event decides nothing: every command checks the state first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts import events as ev
from contracts.events import DetectOptions, FileSpec, Frozen
from contracts.ids import Id, UtcDatetime
from services.common.eventstore import DomainEvent

BatchKind = Literal["batch", "single"]
BatchStatus = Literal[
    "new",
    "reserving",
    "rejected",
    "abandoned",
    "processing",
    "completed",
    "partially_failed",
    "failed",
    "cancelled",
]
DetectStatus = Literal["processing", "completed", "failed"]
TERMINAL: frozenset[str] = frozenset({"completed", "partially_failed", "failed", "cancelled"})
CANCELLED_MESSAGE = "cancelled before analysis finished"


class DomainError(Exception):
    """A command that makes no sense in the batch's current state (the API answers 409)."""


# --- intake's own events (they never leave the service) -------------------------------------


class BatchOpened(DomainEvent):
    """Marks the kind of a new batch; always directly before its BatchRequested."""

    event_type: Literal["BatchOpened"] = "BatchOpened"
    team_id: Id
    batch_id: Id
    kind: BatchKind


class MediaDeleted(DomainEvent):
    """A detect's media left the blob store (zero retention, or the detect was deleted)."""

    event_type: Literal["MediaDeleted"] = "MediaDeleted"
    team_id: Id
    batch_id: Id
    detect_id: Id


class DetectDeleted(DomainEvent):
    """The client deleted a finished detect: it disappears from every read."""

    event_type: Literal["DetectDeleted"] = "DetectDeleted"
    team_id: Id
    batch_id: Id
    detect_id: Id


BatchEvent = Annotated[
    BatchOpened
    | MediaDeleted
    | DetectDeleted
    | ev.BatchRequested
    | ev.FundsReserved
    | ev.FundsRejected
    | ev.BatchAbandoned
    | ev.DetectRequested
    | ev.DetectCompleted
    | ev.DetectFailed
    | ev.BatchTerminal,
    Field(discriminator="event_type"),
]
BATCH_EVENTS: TypeAdapter[BatchEvent] = TypeAdapter(BatchEvent)
# what intake publishes; the other events in its streams are copies or stay inside
PUBLISHED = (ev.BatchRequested, ev.DetectRequested, ev.BatchTerminal, ev.BatchAbandoned)


# --- state -----------------------------------------------------------------------------------


class Detect(Frozen):
    detect_id: Id
    status: DetectStatus = "processing"
    media_deleted: bool = False
    deleted: bool = False


class Batch(Frozen):
    batch_id: Id
    team_id: Id | None = None
    kind: BatchKind = "batch"
    status: BatchStatus = "new"
    version: int = 0
    files: tuple[FileSpec, ...] = ()
    options: DetectOptions = DetectOptions()
    detects: tuple[Detect, ...] = ()
    created_at: UtcDatetime | None = None

    def detect(self, detect_id: str) -> Detect | None:
        return next((d for d in self.detects if d.detect_id == detect_id), None)

    @property
    def completed_count(self) -> int:
        return sum(d.status == "completed" for d in self.detects)

    @property
    def failed_count(self) -> int:
        return sum(d.status == "failed" for d in self.detects)

    @property
    def unfinished(self) -> tuple[str, ...]:
        return tuple(d.detect_id for d in self.detects if d.status == "processing")


def _with_detect(batch: Batch, detect_ids: Sequence[str], **changes: object) -> Batch:
    ids = set(detect_ids)
    detects = tuple(
        d.model_copy(update=changes) if d.detect_id in ids else d for d in batch.detects
    )
    return batch.model_copy(update={"detects": detects})


def evolve(batch: Batch, event: BatchEvent) -> Batch:
    b = batch.model_copy(update={"version": batch.version + 1})
    match event:
        case BatchOpened(team_id=team_id, kind=kind):
            return b.model_copy(update={"team_id": team_id, "kind": kind})
        case ev.BatchRequested(files=files, options=options, occurred_at=at):
            update = {"status": "reserving", "files": files, "options": options, "created_at": at}
            return b.model_copy(update=update)
        case ev.FundsReserved():
            return b.model_copy(update={"status": "processing"})
        case ev.FundsRejected():
            return b.model_copy(update={"status": "rejected"})
        case ev.BatchAbandoned():
            return b.model_copy(update={"status": "abandoned"})
        case ev.DetectRequested(detect_id=detect_id):
            return b.model_copy(update={"detects": (*b.detects, Detect(detect_id=detect_id))})
        case ev.DetectCompleted(detect_id=detect_id):
            return _with_detect(b, [detect_id], status="completed")
        case ev.DetectFailed(detect_id=detect_id):
            return _with_detect(b, [detect_id], status="failed")
        case ev.BatchTerminal(status=status, cancelled_detect_ids=cancelled):
            return _with_detect(b, cancelled, status="failed").model_copy(update={"status": status})
        case MediaDeleted(detect_id=detect_id):
            return _with_detect(b, [detect_id], media_deleted=True)
        case DetectDeleted(detect_id=detect_id):
            return _with_detect(b, [detect_id], deleted=True)
    raise AssertionError(f"unhandled event {event.event_type}")  # pragma: no cover


def replay(batch_id: str, events: Sequence[BatchEvent]) -> Batch:
    batch = Batch(batch_id=batch_id)
    for event in events:
        batch = evolve(batch, event)
    return batch


# --- commands --------------------------------------------------------------------------------


class Open(Frozen):
    """Record a stored, probed upload and ask the wallet to reserve its cost."""

    team_id: Id
    batch_id: Id
    kind: BatchKind
    files: tuple[FileSpec, ...]
    options: DetectOptions
    request_id: str


class RecordFunds(Frozen):
    decision: ev.FundsReserved | ev.FundsRejected


class Abandon(Frozen):
    reason: str


class RecordResult(Frozen):
    result: ev.DetectCompleted | ev.DetectFailed


class Cancel(Frozen):
    pass


class Delete(Frozen):
    detect_id: Id


Command = Open | RecordFunds | Abandon | RecordResult | Cancel | Delete


def _team(batch: Batch) -> str:
    assert batch.team_id is not None, "a batch's team is known from its first event"
    return batch.team_id


def _terminal_status(batch: Batch) -> ev.BatchOutcome:
    if batch.failed_count == 0:
        return "completed"
    return "failed" if batch.completed_count == 0 else "partially_failed"


def _terminal(
    batch: Batch,
    now: datetime,
    causation_id: str | None,
    *,
    cancelled: tuple[str, ...] = (),
) -> ev.BatchTerminal:
    return ev.BatchTerminal(
        team_id=_team(batch),
        correlation_id=batch.batch_id,
        causation_id=causation_id,
        occurred_at=now,
        batch_id=batch.batch_id,
        status="cancelled" if cancelled else _terminal_status(batch),
        total_files=len(batch.files),
        completed_count=batch.completed_count,
        failed_count=batch.failed_count,
        cancelled_detect_ids=cancelled,
        callback_url=batch.options.callback_url,
    )


def _media_deleted(batch: Batch, detect_id: str, now: datetime) -> MediaDeleted:
    return MediaDeleted(
        team_id=_team(batch), batch_id=batch.batch_id, detect_id=detect_id, occurred_at=now
    )


def decide(batch: Batch, command: Command, now: datetime) -> list[BatchEvent]:
    """The events `command` causes in `batch`; [] when it changes nothing (a repeat, a late event).

    Raises DomainError for a request that contradicts the state (cancel a finished batch,
    delete a detect still running). A BatchTerminal's `callback_payload` is left empty: the
    caller renders it from the read model once the other events are applied.
    """
    match command:
        case Open():
            if batch.status != "new":
                return []
            return [
                BatchOpened(
                    team_id=command.team_id,
                    batch_id=command.batch_id,
                    kind=command.kind,
                    occurred_at=now,
                ),
                ev.BatchRequested(
                    team_id=command.team_id,
                    correlation_id=command.batch_id,
                    causation_id=command.request_id,
                    occurred_at=now,
                    batch_id=command.batch_id,
                    files=command.files,
                    options=command.options,
                ),
            ]
        case RecordFunds(decision=decision):
            if batch.status != "reserving":
                return []  # late: if abandoned meanwhile, the wallet releases on BatchAbandoned
            if isinstance(decision, ev.FundsRejected):
                return [decision]
            requests = [
                ev.DetectRequested(
                    team_id=_team(batch),
                    correlation_id=batch.batch_id,
                    causation_id=decision.event_id,
                    occurred_at=now,
                    batch_id=batch.batch_id,
                    detect_id=f.detect_id,
                    file=f,
                    options=batch.options,
                )
                for f in batch.files
            ]
            return [decision, *requests]
        case Abandon(reason=reason):
            if batch.status != "reserving":
                return []
            abandoned = ev.BatchAbandoned(
                team_id=_team(batch),
                correlation_id=batch.batch_id,
                occurred_at=now,
                batch_id=batch.batch_id,
                reason=reason,
            )
            return [abandoned]
        case RecordResult(result=result):
            detect = batch.detect(result.detect_id)
            if detect is None or detect.status != "processing" or batch.status != "processing":
                return []  # a duplicate, or a result that arrived after a cancel
            decided: list[BatchEvent] = [result]
            if batch.options.zero_retention_mode:
                decided.append(_media_deleted(batch, detect.detect_id, now))
            after = evolve(batch, result)
            if not after.unfinished:
                decided.append(_terminal(after, now, result.event_id))
            return decided
        case Cancel():
            if batch.status == "cancelled":
                return []
            if batch.status != "processing":
                raise DomainError(f"batch is {batch.status}, not processing")
            cancelled = batch.unfinished
            decided = []
            if batch.options.zero_retention_mode:
                decided = [_media_deleted(batch, d, now) for d in cancelled]
            stopped = _with_detect(batch, cancelled, status="failed")  # counted as failed
            decided.append(_terminal(stopped, now, None, cancelled=cancelled))
            return decided
        case Delete(detect_id=detect_id):
            detect = batch.detect(detect_id)
            if detect is None or detect.deleted:
                return []
            if detect.status == "processing":
                raise DomainError("detect is still processing; wait for it or cancel its batch")
            decided = [] if detect.media_deleted else [_media_deleted(batch, detect_id, now)]
            deleted = DetectDeleted(
                team_id=_team(batch), batch_id=batch.batch_id, detect_id=detect_id, occurred_at=now
            )
            return [*decided, deleted]
    raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover


def blobs_to_delete(batch: Batch, events: Sequence[BatchEvent]) -> list[str]:
    """Blob keys that `events` (decided on `batch`) release: media no work will read again."""
    by_detect = {f.detect_id: f.blob_key for f in batch.files}
    keys: list[str] = []
    for event in events:
        if isinstance(event, ev.FundsRejected | ev.BatchAbandoned):
            keys.extend(by_detect.values())
        elif isinstance(event, MediaDeleted):
            keys.append(by_detect[event.detect_id])
    return keys
