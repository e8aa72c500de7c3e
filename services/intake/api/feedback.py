"""Feedback on detects (Resemble's /detect/{uuid}/feedback), and the team's list [ours].

POST gives (or revises) this token's answer about a completed detect, with a snapshot of what
the model said; GET reads it back (404 when this token gave none); DELETE retracts it, and is
idempotent. GET /detect/feedback lists the team's answers, every token's [ours];
`verity-admin feedback export` writes them out for retraining.
"""

from __future__ import annotations

from typing import Any, get_args

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from pydantic import JsonValue

from contracts import problems as p
from services.intake.api import openapi as doc
from services.intake.api.auth import Team
from services.intake.api.batches import PageNumber, PageSize
from services.intake.api.context import Intake
from services.intake.api.detects import team_detect
from services.intake.api.posting import page_of, read_json_body
from services.intake.api.views import Row
from services.intake.api.wire import item, timestamp
from services.intake.domain import feedback as domain
from services.intake.errors import ApiError
from services.intake.store import feedback as store

TYPES = get_args(domain.FeedbackType)


def feedback_item(row: Row) -> dict[str, JsonValue]:
    return {
        "detect_uuid": row["detect_id"],
        "type": row["type"],
        "vote": row["vote"],
        "verdict": row["verdict"],
        "score": row["score"],
        "media_type": row["media_type"],
        "comment": row["comment"],
        "credit": row["credit"],
        "source": row["source"],
        "token_uuid": row["token_id"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def snapshot(row: Row) -> domain.Snapshot:
    """What the model said about a completed detect: Resemble's verdict and headline score
    (for a video, the higher of its audio and picture scores)."""
    result: dict[str, Any] = row["result"] or {}
    shown = {k: result[k] for k in ("metrics", "image_metrics", "video_metrics") if result.get(k)}
    labels = {str(m.get("label", "")).lower() for m in shown.values()}
    scores = []
    for key, metrics in shown.items():
        raw = metrics.get("aggregated_score" if key == "metrics" else "score")
        if isinstance(raw, int | float) or (isinstance(raw, str) and raw):
            scores.append(float(raw))
    verdict = "ai_generated" if "fake" in labels else "authentic" if "real" in labels else None
    return domain.Snapshot(
        verdict=verdict,
        score=max(scores) if scores else None,
        media_type=row["media_type"],
        metrics=shown,
    )


class FeedbackController(Controller):
    path = "/detect"
    tags = ["detects"]

    @get(
        "/feedback",
        summary="Your team's feedback on detects, newest first [ours]",
        operation_id="listDetectFeedback",
        responses=doc.answers({200: (doc.FeedbackList, "A page of feedback")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def list_feedback(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            rows, total = await store.page(conn, team.team_id, page, page_size)
        return page_of(page, page_size, total, [feedback_item(r) for r in rows])

    @get(
        "/{detect_uuid:str}/feedback",
        summary="This token's feedback on a detect",
        operation_id="deepfakeDetection_getDetectFeedback",
        responses=doc.answers({200: (doc.FeedbackResponse, "This token's answer")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def get_feedback(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake],
        detect_uuid: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        detect_id, _ = await team_detect(intake, team, detect_uuid)
        async with intake.pool.acquire() as conn:
            row = await store.mine(conn, team.team_id, detect_id, team.token_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"this token gave no feedback on detect {detect_uuid}")
        return item(feedback_item(row))

    @post(
        "/{detect_uuid:str}/feedback",
        status_code=200,
        summary="Say whether a verdict was right",
        operation_id="deepfakeDetection_createDetectFeedback",
        responses=doc.answers(
            {200: (doc.FeedbackResponse, "The saved answer")}, errors=(400, 404, 413)
        ),
        operation_class=doc.operation(doc.FEEDBACK),
    )
    async def give_feedback(
        self, request: Request[Any, Any, Any], team: NamedDependency[Team],
        intake: NamedDependency[Intake], detect_uuid: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        detect_id, row = await team_detect(intake, team, detect_uuid)
        body = await read_json_body(request)
        command = domain.Give(
            team_id=team.team_id, token_id=team.token_id, detect_id=detect_id,
            type=_type(body.get("type")), comment=_comment(body.get("comment")),
            source=_source(body.get("source", "api")), snapshot=_completed(row),
        )  # fmt: skip
        async with intake.pool.acquire() as conn, conn.transaction():
            await store.execute(conn, command)
            saved = await store.mine(conn, team.team_id, detect_id, team.token_id)
        return item(feedback_item(saved))

    @delete(
        "/{detect_uuid:str}/feedback",
        status_code=200,
        summary="Retract your feedback",
        operation_id="deepfakeDetection_deleteDetectFeedback",
        responses=doc.answers({200: (doc.Done, "Retracted (or there was none)")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def retract_feedback(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake],
        detect_uuid: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        detect_id, _ = await team_detect(intake, team, detect_uuid)
        retract = domain.Retract(team_id=team.team_id, token_id=team.token_id, detect_id=detect_id)
        async with intake.pool.acquire() as conn, conn.transaction():
            await store.execute(conn, retract)
        return {"success": True}


def _completed(row: Row) -> domain.Snapshot:
    if row["status"] != "completed":
        raise ApiError(
            p.VALIDATION,
            f"detect {row['detect_id']} is {row['status']}: feedback is for completed detects",
        )
    return snapshot(row)


def _type(raw: object) -> domain.FeedbackType:
    if raw not in TYPES:
        message = f"must be one of {', '.join(TYPES)}"
        raise ApiError(p.VALIDATION, f"`type` {message}", errors={"type": [message]})
    return raw  # type: ignore[return-value]


def _comment(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > domain.MAX_COMMENT or "\x00" in raw:
        message = f"must be text of at most {domain.MAX_COMMENT} characters"
        raise ApiError(p.VALIDATION, f"`comment` {message}", errors={"comment": [message]})
    return raw.strip() or None  # Resemble: trimmed; blank becomes null


def _source(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        message = "must be a non-empty string"
        raise ApiError(p.VALIDATION, f"`source` {message}", errors={"source": [message]})
    return raw.strip()[: domain.MAX_SOURCE]  # Resemble truncates to 64 characters
