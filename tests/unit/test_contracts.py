"""The contracts: decoding, immutability, routing (the AsyncAPI document: test_asyncapi.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts import events as ev
from contracts import topics
from contracts.ids import new_id, normalize_id
from contracts.problems import INSUFFICIENT_FUNDS, Problem

TEAM = new_id()
BATCH = new_id()


def _file(detect_id: str | None = None) -> ev.FileSpec:
    return ev.FileSpec(
        detect_id=detect_id or new_id(),
        filename="call.wav",
        media_type="audio",
        blob_key=f"uploads/{BATCH}/0",
        size_bytes=1234,
        sha256="0" * 64,
        duration_seconds=12.5,
        analysed_seconds=12.5,
    )


def _batch_requested() -> ev.BatchRequested:
    return ev.BatchRequested(
        team_id=TEAM,
        correlation_id=BATCH,
        batch_id=BATCH,
        files=(_file(), _file()),
        options=ev.DetectOptions(frame_length=3),
    )


def test_round_trip_keeps_type_and_values() -> None:
    original = _batch_requested()
    decoded = ev.decode_event(ev.encode_event(original))
    assert isinstance(decoded, ev.BatchRequested)
    assert decoded == original
    assert decoded.files[0].duration_seconds == 12.5


def test_every_event_type_is_routed_and_decodable() -> None:
    assert set(topics.ROUTES) == set(ev.EVENT_TYPES)
    for event_type in ev.EVENT_TYPES:
        assert event_type.model_fields["event_type"].default == event_type.__name__


def test_events_are_frozen_and_producers_cannot_add_unknown_fields() -> None:
    event = _batch_requested()
    with pytest.raises(ValidationError):
        event.batch_id = new_id()  # type: ignore[misc]
    fields = event.model_dump()
    with pytest.raises(ValidationError, match="surprise"):
        ev.BatchRequested(**fields, surprise=1)  # type: ignore[call-arg]  # mypy knows, too
    with pytest.raises(ValidationError, match="surprise"):
        ev.FileSpec(**fields["files"][0], surprise=1)  # type: ignore[call-arg]


def test_readers_ignore_fields_a_newer_producer_added_at_any_depth() -> None:
    """The other half of a rolling deploy: an event from the next release, which added an
    optional field to the envelope, to a nested file and to the options, still decodes."""
    event = _batch_requested()
    payload = json.loads(ev.encode_event(event))
    payload["priority"] = "high"
    payload["files"][0]["codec"] = "opus"
    payload["options"]["new_option"] = {"nested": True}
    decoded = ev.decode_event(json.dumps(payload))
    assert decoded == event
    assert ev.decode_event_dict(payload) == event
    # what the reader does know is still checked
    payload["files"][0]["size_bytes"] = -1
    with pytest.raises(ValidationError, match="size_bytes"):
        ev.decode_event(json.dumps(payload))


def test_malformed_payloads_are_rejected() -> None:
    with pytest.raises(ValidationError):
        ev.decode_event(b"not json")
    with pytest.raises(ValidationError):
        ev.decode_event(json.dumps({"event_type": "NoSuchEvent", "team_id": TEAM}))
    with pytest.raises(ValidationError):  # batches need at least one file
        ev.BatchRequested(
            team_id=TEAM, correlation_id=BATCH, batch_id=BATCH, files=(), options=ev.DetectOptions()
        )


def test_ids_accept_dashes_and_upper_case() -> None:
    dashed = "1B4E28BA-2FA1-11D2-883F-0016D3CCA427"
    assert normalize_id(dashed) == "1b4e28ba2fa111d2883f0016d3cca427"
    event = ev.BatchAbandoned(team_id=TEAM, correlation_id=dashed, batch_id=dashed, reason="x")
    assert event.batch_id == "1b4e28ba2fa111d2883f0016d3cca427"
    with pytest.raises(ValidationError):
        ev.BatchAbandoned(team_id=TEAM, correlation_id="nope", batch_id=BATCH, reason="x")


def test_money_is_integer_micros() -> None:
    line = ev.CostLine(detect_id=new_id(), filename="a.png", media_type="image", cost_micros=10_000)
    assert line.cost_micros == 10_000
    with pytest.raises(ValidationError):
        ev.CostLine(detect_id=new_id(), filename="a", media_type="image", cost_micros=-1)
    with pytest.raises(ValidationError):
        ev.CostLine(detect_id=new_id(), filename="a", media_type="image", cost_micros=1.5)


def test_partition_keys_keep_a_batch_together_and_spread_detects() -> None:
    detect = ev.DetectRequested(
        team_id=TEAM,
        correlation_id=BATCH,
        batch_id=BATCH,
        detect_id=(detect_id := new_id()),
        file=_file(detect_id),
        options=ev.DetectOptions(),
    )
    assert topics.route(detect) == (topics.DETECT_REQUESTS, detect_id)
    assert topics.route(_batch_requested()) == (topics.BATCHES, BATCH)
    failed = ev.DetectFailed(
        team_id=TEAM,
        correlation_id=BATCH,
        batch_id=BATCH,
        detect_id=detect_id,
        error_code="corrupt",
        error_message="bad header",
    )
    assert topics.route(failed) == (topics.DETECT_RESULTS, BATCH)
    assert topics.dead_letter_topic("wallet") == "verity.dlq.wallet.v1"


def test_problem_carries_both_envelopes() -> None:
    body = Problem.of(INSUFFICIENT_FUNDS, "short by 12 cents", details={"shortfall_cents": 12})
    dumped = body.model_dump()
    assert dumped["success"] is False
    assert dumped["message"] == dumped["detail"] == "short by 12 cents"
    assert dumped["status"] == 402
    assert dumped["type"] == "/problems/insufficient-funds"
