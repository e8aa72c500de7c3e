"""A question about a detect (Resemble's /detects/{uuid}/intelligence): pure decide/evolve.

One stream per question (`question-<id>`): intake records the question and publishes it; the
detector's LLM answers (or says why it cannot); a late or repeated answer decides nothing.

    Ask --> DetectQuestionAsked (processing) --DetectQuestionAnswered--> completed
                                             --DetectQuestionFailed----> failed
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, TypeAdapter

from contracts import events as ev
from contracts.events import Frozen
from contracts.ids import Id

QuestionStatus = Literal["new", "processing", "completed", "failed"]


def stream_id(question_id: str) -> str:
    return f"question-{question_id}"


QuestionEvent = Annotated[
    ev.DetectQuestionAsked | ev.DetectQuestionAnswered | ev.DetectQuestionFailed,
    Field(discriminator="event_type"),
]
QUESTION_EVENTS: TypeAdapter[QuestionEvent] = TypeAdapter(QuestionEvent)
QUESTION_EVENT_TYPES = (ev.DetectQuestionAsked, ev.DetectQuestionAnswered, ev.DetectQuestionFailed)


class Question(Frozen):
    question_id: Id
    status: QuestionStatus = "new"


class Ask(Frozen):
    team_id: Id
    detect_id: Id
    query: str = Field(min_length=1, max_length=ev.MAX_QUESTION)
    result: dict[str, JsonValue]


class RecordAnswer(Frozen):
    answer: ev.DetectQuestionAnswered | ev.DetectQuestionFailed


Command = Ask | RecordAnswer


def decide(question: Question, command: Command) -> list[QuestionEvent]:
    match command:
        case Ask() if question.status == "new":
            q = question.question_id
            return [
                ev.DetectQuestionAsked(
                    team_id=command.team_id, correlation_id=q, question_id=q,
                    detect_id=command.detect_id, query=command.query, result=command.result,
                )
            ]  # fmt: skip
        case RecordAnswer() if question.status == "processing":
            return [command.answer]
    return []


def evolve(question: Question, event: QuestionEvent) -> Question:
    status: QuestionStatus = {
        "DetectQuestionAsked": "processing",
        "DetectQuestionAnswered": "completed",
        "DetectQuestionFailed": "failed",
    }[event.event_type]  # type: ignore[assignment]
    return question.model_copy(update={"status": status})


def replay(question_id: str, events: list[QuestionEvent]) -> Question:
    question = Question(question_id=question_id)
    for event in events:
        question = evolve(question, event)
    return question
