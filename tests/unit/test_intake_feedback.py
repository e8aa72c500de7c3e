"""Feedback on detects: the pure rules, and the snapshot of what the model said."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.ids import new_id
from services.intake.api.feedback import snapshot
from services.intake.domain import feedback as d

TEAM, TOKEN, DETECT = new_id(), new_id(), new_id()
SNAP = d.Snapshot(verdict="authentic", score=0.12, media_type="audio", metrics={})


def give(kind: d.FeedbackType = "correct", comment: str | None = None) -> d.Give:
    return d.Give(team_id=TEAM, token_id=TOKEN, detect_id=DETECT, type=kind, comment=comment,
                  snapshot=SNAP)  # fmt: skip


def test_an_answer_is_given_revised_and_retracted() -> None:
    fresh = d.Feedback()
    (given,) = d.decide(fresh, give("should_be_ai_generated", "cloned"))
    assert isinstance(given, d.FeedbackGiven)
    assert (given.type, given.comment, given.source) == ("should_be_ai_generated", "cloned", "api")
    state = d.evolve(fresh, given)
    assert (state.given, state.version) == (True, 1)
    (revised,) = d.decide(state, give("correct"))  # an upsert: giving again revises it
    state = d.evolve(state, revised)
    retract = d.Retract(team_id=TEAM, token_id=TOKEN, detect_id=DETECT)
    (gone,) = d.decide(state, retract)
    assert isinstance(gone, d.FeedbackRetracted)
    state = d.evolve(state, gone)
    assert (state.given, state.version) == (False, 3)
    assert d.decide(state, retract) == []  # retracting nothing records nothing
    assert d.replay([given, revised, gone]) == state


def test_vote_follows_type_and_limits_hold() -> None:
    assert [d.vote(k) for k in ("correct", "skipped", "should_be_authentic")] == [
        "up", "down", "down"
    ]  # fmt: skip
    with pytest.raises(ValidationError):
        give(comment="x" * (d.MAX_COMMENT + 1))
    with pytest.raises(ValidationError):
        d.Give.model_validate({**give().model_dump(), "type": "wrong"})


def row(media_type: str, result: dict[str, Any] | None) -> dict[str, Any]:
    return {"detect_id": DETECT, "media_type": media_type, "result": result}


def test_the_snapshot_is_resemble_verdict_and_headline_score() -> None:
    audio = snapshot(row("audio", {"metrics": {"label": "fake", "aggregated_score": "0.91"}}))
    assert (audio.verdict, audio.score) == ("ai_generated", 0.91)
    image = snapshot(row("image", {"image_metrics": {"label": "Real", "score": 0.2}}))
    assert (image.verdict, image.score) == ("authentic", 0.2)
    video = snapshot(row("video", {
        "metrics": {"label": "real", "aggregated_score": "0.10"},
        "video_metrics": {"label": "Fake", "score": 0.8},
    }))  # fmt: skip
    assert (video.verdict, video.score) == ("ai_generated", 0.8)  # the higher of the two
    unsure = snapshot(row("audio", {"metrics": {"label": "inconclusive", "aggregated_score": ""}}))
    assert (unsure.verdict, unsure.score) == (None, None)
    assert snapshot(row("audio", None)).metrics == {}
