"""Questions about a detect (Resemble's /detects/{uuid}/intelligence): ask, then poll.

POST records the question (domain/question.py) and answers 202 at once; the detector's LLM
answers from the detect's result (never its media) and GET shows the answer, or why there is
none (no LLM configured, no useful answer). The detect must be completed: 422 before that.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from pydantic import JsonValue

from contracts import events as ev
from contracts import problems as p
from contracts.ids import new_id
from services.intake.api import openapi as doc
from services.intake.api import views
from services.intake.api.auth import Team
from services.intake.api.context import Intake
from services.intake.api.posting import canonical_id, read_json_body
from services.intake.api.views import Row
from services.intake.api.wire import item, timestamp
from services.intake.domain import question as domain
from services.intake.errors import ApiError
from services.intake.store import questions as store


def question_item(row: Row) -> dict[str, JsonValue]:
    return {
        "uuid": row["question_id"],
        "detect_uuid": row["detect_id"],
        "query": row["query"],
        "answer": row["answer"],
        "status": row["status"],
        "error_message": row["error_message"],
        "model": row["model"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


class QuestionController(Controller):
    path = "/detects/{detect_uuid:str}/intelligence"
    tags = ["detects"]

    @post(
        "/",
        summary="Ask a question about a completed detect (answered in the background)",
        status_code=202,
        operation_id="detectIntelligence_askDetectIntelligenceQuestion",
        responses=doc.answers(
            {202: (doc.QuestionResponse, "The question, processing")}, errors=(400, 404, 413, 422)
        ),
        operation_class=doc.operation(doc.QUESTION),
    )
    async def ask(
        self, request: Request[Any, Any, Any], team: NamedDependency[Team],
        intake: NamedDependency[Intake], detect_uuid: FromPath[str],
    ) -> Response[Any]:  # fmt: skip
        detect_id = canonical_id(detect_uuid, "detect")
        body = await read_json_body(request)
        query = body.get("query")
        if (
            not isinstance(query, str)
            or not query.strip()
            or len(query) > ev.MAX_QUESTION
            or "\x00" in query  # no text column can hold NUL
        ):
            message = f"must be a question of 1-{ev.MAX_QUESTION} characters"
            raise ApiError(p.VALIDATION, f"`query` {message}", errors={"query": [message]})
        async with intake.pool.acquire() as conn:
            detect = await views.detect_row(conn, team.team_id, detect_id)
        if detect is None:
            raise ApiError(p.NOT_FOUND, f"no detect {detect_uuid}")
        if detect["status"] != "completed":
            raise ApiError(p.UNPROCESSABLE, f"detect {detect_id} is {detect['status']}: "
                           "questions are about completed detects")  # fmt: skip
        question_id = new_id()
        shown = {k: v for k, v in (detect["result"] or {}).items() if k != "voiceprint"}
        ask = domain.Ask(
            team_id=team.team_id, detect_id=detect_id, query=query.strip(), result=shown
        )
        async with intake.pool.acquire() as conn, conn.transaction():
            await store.execute(conn, question_id, ask)
            row = await store.question_row(conn, team.team_id, detect_id, question_id)
        return Response(item(question_item(row)), status_code=202)

    @get(
        "/{question_uuid:str}",
        summary="A question's status and answer",
        operation_id="detectIntelligence_getDetectIntelligenceQuestion",
        responses=doc.answers({200: (doc.QuestionResponse, "The question")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def answer(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake],
        detect_uuid: FromPath[str], question_uuid: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        detect_id = canonical_id(detect_uuid, "detect")
        question_id = canonical_id(question_uuid, "question")
        async with intake.pool.acquire() as conn:
            row = await store.question_row(conn, team.team_id, detect_id, question_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no question {question_uuid} about detect {detect_uuid}")
        return item(question_item(row))
