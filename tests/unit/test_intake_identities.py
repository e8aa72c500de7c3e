"""The identity aggregate (decide/evolve) and the voiceprint ranking, pure."""

from __future__ import annotations

import math

import pytest
from pydantic import JsonValue

from contracts import events as ev
from contracts.ids import new_id
from services.intake.domain import identity as d
from services.intake.domain.matching import Saved, nearest

TEAM = new_id()
CALIBRATION: dict[str, JsonValue] = {
    "model": "m",
    "slope": 20.0,
    "intercept": -10.0,
    "threshold": 0.5,
}


def computed(identity_id: str) -> ev.VoiceprintComputed:
    return ev.VoiceprintComputed(
        team_id=TEAM, correlation_id=identity_id, request_id=identity_id, purpose="identity",
        embedding=tuple([1.0] + [0.0] * 7), speech_seconds=3.0,
        same_speaker=ev.SameSpeaker.model_validate(CALIBRATION),
    )  # fmt: skip


def run(identity: d.Identity, command: d.Command) -> tuple[d.Identity, list[d.IdentityEvent]]:
    events = d.decide(identity, command)
    for event in events:
        identity = d.evolve(identity, event)
    return identity, events


def test_enrol_asks_for_a_voiceprint_then_a_late_or_repeated_answer_changes_nothing() -> None:
    i = d.Identity(identity_id=new_id())
    enrol = d.Enroll(team_id=TEAM, name="Ann", blob_key="uploads/x/000", media_type="audio")
    i, events = run(i, enrol)
    created, asked = events
    assert isinstance(created, d.IdentityCreated)
    assert isinstance(asked, ev.VoiceprintRequested)
    assert (asked.purpose, asked.request_id) == ("identity", i.identity_id)
    assert i.status == "processing"
    assert run(i, enrol)[1] == []  # enrolled once
    before = i
    i, events = run(i, d.RecordVoiceprint(result=computed(i.identity_id)))
    assert i.status == "ready"
    assert d.sample_to_delete(before, events) == "uploads/x/000"  # the recording goes
    assert run(i, d.RecordVoiceprint(result=computed(i.identity_id)))[1] == []


def test_delete_is_for_the_owning_team_and_once() -> None:
    i, _ = run(
        d.Identity(identity_id=new_id()),
        d.Enroll(team_id=TEAM, name="Ann", blob_key="k", media_type="audio"),
    )
    assert run(i, d.Delete(team_id=new_id()))[1] == []
    gone, events = run(i, d.Delete(team_id=TEAM))
    assert gone.status == "deleted"
    assert d.sample_to_delete(i, events) == "k"  # deleted before its voiceprint came
    assert run(gone, d.Delete(team_id=TEAM))[1] == []
    assert run(gone, d.RecordVoiceprint(result=computed(i.identity_id)))[1] == []


def test_nearest_ranks_by_cosine_with_calibrated_confidence() -> None:
    saved = [
        Saved("a", "far", [0.0, 1.0, 0.0]),
        Saved("b", "near", [0.9, 0.1, 0.0]),
        Saved("c", "opposite", [-1.0, 0.0, 0.0]),
    ]
    ranked = nearest([2.0, 0.0, 0.0], saved, CALIBRATION, top_k=2)  # norms do not matter
    assert [m["name"] for m in ranked] == ["near", "far"]  # type: ignore[index,call-overload]
    cosine = 0.9 / math.hypot(0.9, 0.1)
    assert ranked[0] == {
        "uuid": "b", "name": "near",
        "confidence": round(1 / (1 + math.exp(-(20 * cosine - 10))), 4),
        "distance": round(100 * cosine, 2), "score_type": "cosine",
        "cosine_distance": round(1 - cosine, 4),
        "match": True,  # cosine 0.99 >= the 0.5 threshold
    }  # fmt: skip
    assert ranked[1]["match"] is False  # type: ignore[index,call-overload]
    assert ranked[1]["cosine_distance"] == pytest.approx(1.0)  # type: ignore[index,call-overload]
    assert ranked[1]["distance"] == 0.0  # type: ignore[index,call-overload]
    opposite = nearest([1.0, 0.0, 0.0], saved[2:], CALIBRATION, top_k=1)
    assert opposite[0]["distance"] == 0.0  # type: ignore[index,call-overload]  # floored
    assert nearest([1.0, 0.0, 0.0], [], CALIBRATION, top_k=5) == []
