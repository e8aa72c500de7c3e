"""The single-detect endpoints (API.md "POST /detect", the detect item, list, delete)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream
from pydantic import JsonValue

from contracts import problems as p
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id
from services.common.blobstore import BlobNotFoundError
from services.intake.api import openapi as doc
from services.intake.api import views
from services.intake.api.auth import Team
from services.intake.api.batches import PageNumber, PageSize
from services.intake.api.context import Intake
from services.intake.api.options import SINGLE_FIELDS, parse_options
from services.intake.api.posting import (
    MAX_JSON_BYTES,
    Submission,
    canonical_id,
    check_callback,
    fingerprint,
    page_of,
    prefer_wait,
    read_json_body,
    read_upload,
    rejection,
    unanswered,
)
from services.intake.api.wire import item
from services.intake.domain.batch import Delete, DomainError
from services.intake.errors import ApiError
from services.intake.saga.submission import Answer, Candidate, probe_all
from services.intake.store import secure_uploads
from services.intake.store.batches import detect_key
from services.intake.uploads.fetch import FetchError, fetch
from services.intake.uploads.multipart import UploadLimits

MEDIA_SOURCES = ("url", "media_token")


async def team_detect(intake: Intake, team: Team, raw: str) -> tuple[str, views.Row]:
    """(canonical id, read-model row) of the team's detect `raw`; 404 for any other."""
    detect_id = canonical_id(raw, "detect")
    async with intake.pool.acquire() as conn:
        row = await views.detect_row(conn, team.team_id, detect_id)
    if row is None:
        raise ApiError(p.NOT_FOUND, f"no detect {raw}")
    return detect_id, row


async def _claim_upload(
    intake: Intake, submission: Submission, token: str, batch_id: str, key: str
) -> Candidate:
    """The secure upload a media token names, now this detect's staged media at `key`."""
    try:
        upload_id = intake.media_tokens.verify(submission.team.team_id, token)
    except ValueError as exc:
        message = f"`media_token` {exc}"
        raise ApiError(p.VALIDATION, message, errors={"media_token": [str(exc)]}) from exc
    async with intake.pool.acquire() as conn:
        claimed = await secure_uploads.claim(conn, submission.team.team_id, upload_id, batch_id)
        used_by = await _detect_of(conn, upload_id) if claimed == "used" else None
    if isinstance(claimed, str):
        reason = {
            "unknown": "names no upload of this team (or it expired and was deleted)",
            "expired": "has expired; upload the file again",
            "used": f"was already used by detect {used_by}; a media token is good for one detect",
        }[claimed]
        raise ApiError(p.VALIDATION, f"`media_token` {reason}", errors={"media_token": [reason]})
    try:
        await intake.blobs.move(claimed.blob_key, key)
    except BlobNotFoundError as exc:
        reason = "names an upload whose file is no longer stored; upload it again"
        raise ApiError(
            p.VALIDATION, f"`media_token` {reason}", errors={"media_token": [reason]}
        ) from exc
    submission.staged.keys.append(key)
    return Candidate(claimed.filename, key, claimed.size_bytes, claimed.sha256)


async def _detect_of(conn: Any, upload_id: str) -> str | None:
    detect: str | None = await conn.fetchval(
        "SELECT d.detect_id FROM secure_uploads u JOIN detects d ON d.batch_id = u.used_by"
        " WHERE u.upload_id = $1",
        upload_id,
    )
    return detect


class DetectController(Controller):
    path = "/detect"
    tags = ["detects"]

    @post(
        "/",
        summary="Analyse one file (multipart `file`), URL (JSON `url`) or upload (`media_token`)",
        request_max_body_size=None,
        status_code=200,
        operation_id="deepfakeDetection_createDetection",
        responses=doc.answers(
            {200: (doc.DetectResponse, "The detect: processing, or terminal with Prefer: wait")},
            errors=(400, 402, 403, 413, 422, 503),
        ),
        operation_class=doc.operation(
            doc.DETECT_UPLOAD, headers=(doc.IDEMPOTENCY_KEY, doc.PREFER_WAIT)
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
    ) -> Response[Any]:
        wait = prefer_wait(request)
        submission = Submission(intake, team, request)
        batch_id = new_id()
        try:
            if request.headers.get("content-type", "").lower().startswith("application/json"):
                fields, candidate = await self._from_json(request, intake, submission, batch_id)
            else:
                fields, candidate = await self._from_upload(request, intake, submission, batch_id)
            return await self._submit(submission, fields, candidate, batch_id, wait)
        except BaseException:
            await submission.fail()
            raise

    async def _from_upload(
        self, request: Request[Any, Any, Any], intake: Intake, submission: Submission, batch_id: str
    ) -> tuple[list[tuple[str, JsonValue]], Candidate]:
        s = intake.settings
        limits = UploadLimits(
            max_total_bytes=s.max_single_bytes + MAX_JSON_BYTES,
            max_file_bytes=s.max_single_bytes,
            max_files=1,
        )
        media = frozenset({"file"})
        form = await read_upload(
            request, intake, batch_id, media, limits, submission.probe_soon(media)
        )
        submission.staged.keys.extend(f.blob_key for f in form.files)
        if not form.files:
            raise ApiError(
                p.VALIDATION,
                'send the media as multipart field `file`, or JSON {"url": ...}',
                errors={"file": ["required"]},
            )
        f = form.files[0]
        return list(form.fields), Candidate(f.filename, f.blob_key, f.size_bytes, f.sha256)

    async def _from_json(
        self, request: Request[Any, Any, Any], intake: Intake, submission: Submission, batch_id: str
    ) -> tuple[list[tuple[str, JsonValue]], Candidate]:
        """JSON: exactly one of `url` (we fetch it) and `media_token` (POST /secure_uploads)."""
        body = await read_json_body(request)
        given = [name for name in MEDIA_SOURCES if name in body]
        if len(given) != 1 or not isinstance(body[given[0]], str):
            message = "send exactly one of `url` and `media_token` as a string"
            raise ApiError(p.VALIDATION, message, errors={name: [message] for name in given or
                                                           MEDIA_SOURCES})  # fmt: skip
        source = body.pop(given[0])
        fields: list[tuple[str, JsonValue]] = list(body.items())
        parse_options(fields, SINGLE_FIELDS)  # reject bad options before fetching anything
        key = f"uploads/{batch_id}/000"
        if given[0] == "media_token":
            candidate = await _claim_upload(intake, submission, source, batch_id, key)
            return [*fields, ("media_token", source)], candidate
        submission.staged.keys.append(key)
        s = intake.settings
        url = source
        try:
            fetched = await fetch(
                url,
                intake.blobs,
                key,
                allowlist=intake.allowlist,
                max_bytes=s.max_single_bytes,
                timeout_seconds=s.fetch_timeout_seconds,
            )
        except FetchError as exc:
            kind = p.PAYLOAD_TOO_LARGE if exc.too_large else p.VALIDATION
            raise ApiError(kind, str(exc), errors={"url": [str(exc)]}) from exc
        candidate = Candidate(fetched.filename, key, fetched.blob.size, fetched.blob.sha256)
        return [*fields, ("url", url)], candidate

    async def _submit(
        self,
        submission: Submission,
        fields: list[tuple[str, JsonValue]],
        candidate: Candidate,
        batch_id: str,
        wait: float | None,
    ) -> Response[Any]:
        intake = submission.intake
        options = parse_options([kv for kv in fields if kv[0] not in MEDIA_SOURCES], SINGLE_FIELDS)
        await check_callback(intake, options)
        specs = await probe_all([candidate], submission.prober, options)
        if (
            replayed := await submission.replay(fingerprint("/detect", fields, [candidate]))
        ) is not None:
            return replayed
        return await submission.conclude(
            partial(self._conclude, submission, batch_id, specs, options, wait)
        )

    async def _conclude(
        self,
        submission: Submission,
        batch_id: str,
        specs: list[FileSpec],
        options: DetectOptions,
        wait: float | None,
    ) -> Response[Any]:
        intake = submission.intake
        answer: Answer = await intake.submitter.submit(
            submission.team.team_id, batch_id, "single", specs, options, new_id(), submission.staged
        )
        if answer == "rejected":
            raise await rejection(intake, batch_id)
        if answer == "abandoned":
            raise unanswered(intake)
        detect_id = specs[0].detect_id
        if wait is not None:
            seconds = min(wait, intake.settings.max_wait_seconds)
            await intake.progress.wait_for(
                detect_key(detect_id), lambda: _finished(intake, detect_id), seconds
            )
        async with intake.pool.acquire() as conn:
            row = await views.detect_row(conn, submission.team.team_id, detect_id)
        assert row is not None
        body = item(views.detect_item(row, intake.links))
        return await submission.remember(Response(body, status_code=200), body)

    @get(
        "/",
        summary="Your detects, newest first",
        operation_id="deepfakeDetection_listDetections",
        responses=doc.answers({200: (doc.DetectList, "A page of detects")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def list_detects(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            found = await views.detect_page(conn, team.team_id, page, page_size)
        items = [views.detect_item(r, intake.links) for r in found.rows]
        return page_of(page, page_size, found.total, items)

    @get(
        "/{detect_uuid:str}",
        summary="A detect and its result",
        operation_id="deepfakeDetection_getDetection",
        responses=doc.answers({200: (doc.DetectResponse, "The detect")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def get_detect(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        detect_uuid: FromPath[str],
    ) -> dict[str, Any]:
        _, row = await team_detect(intake, team, detect_uuid)
        return item(views.detect_item(row, intake.links))

    @get(
        "/{detect_uuid:str}/media",
        summary="The analysed media, while it is retained [ours]",
        operation_id="getDetectionMedia",
        media_type="application/octet-stream",
        content_media_type="application/octet-stream",
        response_description="The file's bytes, as uploaded",
        responses=doc.answers({}, errors=(404,)),
        operation_class=doc.operation(success_headers=("Content-Disposition",)),
    )
    async def media(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        detect_uuid: FromPath[str],
    ) -> Stream:
        detect_id = canonical_id(detect_uuid, "detect")
        async with intake.pool.acquire() as conn:
            row = await views.detect_row(conn, team.team_id, detect_id)
        if row is None or row["media_deleted"] or row["options"]["zero_retention_mode"]:
            raise ApiError(p.NOT_FOUND, f"no retained media for detect {detect_uuid}")
        return Stream(
            blob_body(intake, row["blob_key"]),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{row["filename"]}"'},
        )

    @delete(
        "/{detect_uuid:str}",
        status_code=200,
        summary="Delete a finished detect and its media",
        operation_id="deepfakeDetection_deleteDetection",
        responses=doc.answers({200: (doc.DeleteResponse, "Deleted")}, errors=(404, 409)),
        operation_class=doc.DOCUMENTED,
    )
    async def delete_detect(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        detect_uuid: FromPath[str],
    ) -> dict[str, Any]:
        detect_id = canonical_id(detect_uuid, "detect")
        async with intake.pool.acquire() as conn, conn.transaction():
            row = await views.detect_row(conn, team.team_id, detect_id)
            if row is None:
                raise ApiError(p.NOT_FOUND, f"no detect {detect_uuid}")
            try:
                await intake.batches.execute(conn, row["batch_id"], Delete(detect_id=detect_id))
            except DomainError as exc:
                raise ApiError(p.CONFLICT, f"cannot delete: {exc}") from exc
            picture = (row["result"] or {}).get("visualization") or {}
            if picture.get("blob_key"):  # derived from the media: it goes with it
                await intake.blobs.delete(picture["blob_key"])
        return {
            "success": True,
            "message": f"detect {detect_id} and its media deleted",
            "item": {"uuid": detect_id, "deleted": True},
        }


async def blob_body(intake: Intake, key: str) -> AsyncIterator[bytes]:
    """A blob's bytes for a streamed response; one deleted meanwhile ends the body early."""
    try:
        async for chunk in intake.blobs.read(key):
            yield chunk
    except BlobNotFoundError:
        return


async def _finished(intake: Intake, detect_id: str) -> bool | None:
    async with intake.pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM detects WHERE detect_id = $1", detect_id)
    return True if status in ("completed", "failed") else None
