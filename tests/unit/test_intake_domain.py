"""The batch aggregate's decide/evolve: pure, no infrastructure."""

from __future__ import annotations

import pytest

from contracts import events as ev
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id, utcnow
from services.intake.domain.batch import (
    Abandon,
    Batch,
    BatchEvent,
    Cancel,
    Delete,
    DetectDeleted,
    DomainError,
    MediaDeleted,
    Open,
    RecordFunds,
    RecordResult,
    blobs_to_delete,
    decide,
    evolve,
)

TEAM = new_id()
NOW = utcnow()


def spec(name: str) -> FileSpec:
    return FileSpec(
        detect_id=new_id(),
        filename=name,
        media_type="audio",
        blob_key=f"media/{name}",
        size_bytes=10,
        sha256="0" * 64,
        duration_seconds=1.0,
        analysed_seconds=1.0,
    )


def run(batch: Batch, *commands: object) -> tuple[Batch, list[BatchEvent]]:
    """Decide and apply each command in turn; returns the state and the last decision."""
    decided: list[BatchEvent] = []
    for command in commands:
        decided = decide(batch, command, NOW)  # type: ignore[arg-type]
        for event in decided:
            batch = evolve(batch, event)
    return batch, decided


def opened(n: int = 3, **options: object) -> Batch:
    batch_id = new_id()
    files = tuple(spec(f"f{i}.wav") for i in range(n))
    command = Open(
        team_id=TEAM,
        batch_id=batch_id,
        kind="batch",
        files=files,
        options=DetectOptions.model_validate(options),
        request_id="r1",
    )
    batch, _ = run(Batch(batch_id=batch_id), command)
    return batch


def reserved(batch: Batch) -> ev.FundsReserved:
    return ev.FundsReserved(
        team_id=TEAM, correlation_id=batch.batch_id, batch_id=batch.batch_id,
        reserved_micros=3000, lines=(),
    )  # fmt: skip


def rejected(batch: Batch) -> ev.FundsRejected:
    return ev.FundsRejected(
        team_id=TEAM, correlation_id=batch.batch_id, batch_id=batch.batch_id,
        required_micros=3000, available_micros=0, shortfall_micros=3000, lines=(),
    )  # fmt: skip


def completed(batch: Batch, i: int) -> ev.DetectCompleted:
    return ev.DetectCompleted(
        team_id=TEAM, correlation_id=batch.batch_id, batch_id=batch.batch_id,
        detect_id=batch.files[i].detect_id, media_type="audio", result={},
    )  # fmt: skip


def failed(batch: Batch, i: int) -> ev.DetectFailed:
    return ev.DetectFailed(
        team_id=TEAM, correlation_id=batch.batch_id, batch_id=batch.batch_id,
        detect_id=batch.files[i].detect_id, error_code="x", error_message="broken",
    )  # fmt: skip


def test_open_requests_funds_once() -> None:
    batch = opened()
    assert batch.status == "reserving"
    assert batch.version == 2  # BatchOpened + BatchRequested
    again = Open(
        team_id=TEAM, batch_id=batch.batch_id, kind="batch", files=batch.files,
        options=batch.options, request_id="r2",
    )  # fmt: skip
    assert decide(batch, again, NOW) == []


def test_reservation_creates_one_detect_request_per_file_in_upload_order() -> None:
    batch = opened(3)
    batch, events = run(batch, RecordFunds(decision=reserved(batch)))
    requests = [e for e in events if isinstance(e, ev.DetectRequested)]
    assert [r.detect_id for r in requests] == [f.detect_id for f in batch.files]
    assert batch.status == "processing"
    assert decide(batch, RecordFunds(decision=reserved(batch)), NOW) == []  # a duplicate


def test_rejection_releases_every_blob_and_creates_nothing() -> None:
    batch = opened(2)
    events = decide(batch, RecordFunds(decision=rejected(batch)), NOW)
    assert [e.event_type for e in events] == ["FundsRejected"]
    assert blobs_to_delete(batch, events) == [f.blob_key for f in batch.files]


def test_abandon_only_while_reserving_and_late_funds_change_nothing() -> None:
    batch = opened(1)
    batch, events = run(batch, Abandon(reason="timeout"))
    assert batch.status == "abandoned"
    assert blobs_to_delete(opened(1), events)  # an abandoned batch's media goes too
    assert decide(batch, RecordFunds(decision=reserved(batch)), NOW) == []


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (("ok", "ok"), "completed"),
        (("ok", "fail"), "partially_failed"),
        (("fail", "fail"), "failed"),
    ],
)
def test_last_result_ends_the_batch(outcomes: tuple[str, str], status: str) -> None:
    batch = opened(2)
    batch, _ = run(batch, RecordFunds(decision=reserved(batch)))
    results = [
        completed(batch, i) if o == "ok" else failed(batch, i) for i, o in enumerate(outcomes)
    ]
    batch, first = run(batch, RecordResult(result=results[0]))
    assert not any(isinstance(e, ev.BatchTerminal) for e in first)
    batch, last = run(batch, RecordResult(result=results[1]))
    terminal = last[-1]
    assert isinstance(terminal, ev.BatchTerminal)
    assert (terminal.status, batch.status) == (status, status)
    assert terminal.completed_count + terminal.failed_count == 2
    assert decide(batch, RecordResult(result=results[1]), NOW) == []  # redelivered


def test_zero_retention_deletes_media_as_each_file_ends() -> None:
    batch = opened(2, zero_retention_mode=True)
    batch, _ = run(batch, RecordFunds(decision=reserved(batch)))
    before = batch
    batch, events = run(batch, RecordResult(result=completed(batch, 0)))
    assert [type(e) for e in events] == [ev.DetectCompleted, MediaDeleted]
    assert blobs_to_delete(before, events) == [batch.files[0].blob_key]


def test_cancel_stops_unfinished_detects_and_late_results_are_ignored() -> None:
    batch = opened(3)
    batch, _ = run(batch, RecordFunds(decision=reserved(batch)))
    batch, _ = run(batch, RecordResult(result=completed(batch, 0)))
    batch, events = run(batch, Cancel())
    terminal = events[-1]
    assert isinstance(terminal, ev.BatchTerminal)
    assert terminal.status == "cancelled"
    assert terminal.cancelled_detect_ids == (batch.files[1].detect_id, batch.files[2].detect_id)
    assert (terminal.completed_count, terminal.failed_count) == (1, 2)
    assert decide(batch, RecordResult(result=completed(batch, 1)), NOW) == []
    assert decide(batch, Cancel(), NOW) == []  # cancelling twice is harmless


def test_cancel_of_a_finished_batch_is_refused() -> None:
    batch = opened(1)
    batch, _ = run(
        batch, RecordFunds(decision=reserved(batch)), RecordResult(result=completed(batch, 0))
    )
    with pytest.raises(DomainError):
        decide(batch, Cancel(), NOW)


def test_delete_only_finished_detects_once() -> None:
    batch = opened(2)
    batch, _ = run(
        batch, RecordFunds(decision=reserved(batch)), RecordResult(result=completed(batch, 0))
    )
    with pytest.raises(DomainError):
        decide(batch, Delete(detect_id=batch.files[1].detect_id), NOW)
    batch, events = run(batch, Delete(detect_id=batch.files[0].detect_id))
    assert [type(e) for e in events] == [MediaDeleted, DetectDeleted]
    assert decide(batch, Delete(detect_id=batch.files[0].detect_id), NOW) == []
