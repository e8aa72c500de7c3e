"""Feedback on a detect (Resemble's /detect/{uuid}/feedback): pure `decide` and `evolve`.

One stream per detect and token (`feedback-<detect id>-<token id>`): a token's answer is
revised by giving it again (an upsert, as Resemble's is per user), and retracted at will. An
answer carries a snapshot of what the model said when it was given (verdict, score, media
type, the metrics), so it stays usable for retraining after the detect is re-run or deleted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, TypeAdapter

from contracts.events import Frozen, MediaType
from contracts.ids import Id
from services.common.eventstore import DomainEvent

FeedbackType = Literal[
    "correct", "should_be_ai_generated", "should_be_authentic", "should_be_non_ai",
    "should_be_neutral", "skipped",
]  # fmt: skip
Verdict = Literal["ai_generated", "authentic"]
MAX_COMMENT = 1000
MAX_SOURCE = 64


def stream_id(detect_id: str, token_id: str) -> str:
    return f"feedback-{detect_id}-{token_id}"


def vote(kind: FeedbackType) -> Literal["up", "down"]:
    """Resemble: derived from `type`, never independent of it."""
    return "up" if kind == "correct" else "down"


class Snapshot(Frozen):
    """What the model said when the answer was given."""

    verdict: Verdict | None
    score: float | None = Field(ge=0, le=1)
    media_type: MediaType
    metrics: dict[str, JsonValue]


class FeedbackGiven(DomainEvent):
    event_type: Literal["FeedbackGiven"] = "FeedbackGiven"
    team_id: Id
    token_id: Id
    detect_id: Id
    type: FeedbackType
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    source: str = Field(default="api", max_length=MAX_SOURCE)
    snapshot: Snapshot


class FeedbackRetracted(DomainEvent):
    event_type: Literal["FeedbackRetracted"] = "FeedbackRetracted"
    team_id: Id
    token_id: Id
    detect_id: Id


FeedbackEvent = Annotated[FeedbackGiven | FeedbackRetracted, Field(discriminator="event_type")]
FEEDBACK_EVENTS: TypeAdapter[FeedbackEvent] = TypeAdapter(FeedbackEvent)
FEEDBACK_EVENT_TYPES = (FeedbackGiven, FeedbackRetracted)


class Feedback(Frozen):
    given: bool = False
    version: int = 0


class Give(Frozen):
    team_id: Id
    token_id: Id
    detect_id: Id
    type: FeedbackType
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    source: str = Field(default="api", max_length=MAX_SOURCE)
    snapshot: Snapshot


class Retract(Frozen):
    team_id: Id
    token_id: Id
    detect_id: Id


Command = Give | Retract


def decide(feedback: Feedback, command: Command) -> list[FeedbackEvent]:
    match command:
        case Give():
            return [FeedbackGiven(**command.model_dump())]
        case Retract() if feedback.given:
            return [FeedbackRetracted(**command.model_dump())]
    return []


def evolve(feedback: Feedback, event: FeedbackEvent) -> Feedback:
    return Feedback(given=isinstance(event, FeedbackGiven), version=feedback.version + 1)


def replay(events: list[FeedbackEvent]) -> Feedback:
    feedback = Feedback()
    for event in events:
        feedback = evolve(feedback, event)
    return feedback
