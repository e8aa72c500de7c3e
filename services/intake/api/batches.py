"""The batch endpoints (API.md "POST /detect/batch", reads, cancel)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from contracts import problems as p
from contracts.events import DetectOptions, FileSpec
from contracts.ids import new_id
from services.intake.api import openapi as doc
from services.intake.api import views
from services.intake.api.auth import Team
from services.intake.api.context import Intake
from services.intake.api.options import BATCH_FIELDS, parse_options
from services.intake.api.posting import (
    Submission,
    canonical_id,
    check_callback,
    fingerprint,
    page_of,
    prefer_wait,
    read_upload,
    rejection,
    unanswered,
)
from services.intake.api.wire import item
from services.intake.domain.batch import Cancel, DomainError
from services.intake.errors import ApiError
from services.intake.saga.submission import probe_all, unpack
from services.intake.uploads.multipart import Form, UploadLimits

MAX_PAGE = 1_000_000  # past it, the row offset would overflow PostgreSQL's bigint (a 500)
PageNumber = Annotated[
    int, Parameter(ge=1, le=MAX_PAGE, description=f"1-based page number (at most {MAX_PAGE:,})")
]
PageSize = Annotated[int, Parameter(ge=10, le=1000, description="items per page (10-1000)")]


class BatchController(Controller):
    path = "/detect/batch"
    tags = ["batches"]

    @post(
        "/",
        summary="Upload 1-50 files (files[]) or one zip (file) for analysis",
        request_max_body_size=None,  # streamed, bounded by uploads/multipart.py (413 as it crosses)
        status_code=202,
        operation_id="deepfakeDetection_createDetectBatch",
        responses=doc.answers(
            {202: (doc.BatchResponse, "Accepted: the batch, processing")},
            errors=(400, 402, 413, 422, 503),
        ),
        operation_class=doc.operation(
            doc.BATCH_UPLOAD,
            headers=(doc.IDEMPOTENCY_KEY, doc.PREFER_REFUSED),
            success_headers=("Location",),
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
    ) -> Response[Any]:
        if prefer_wait(request) is not None:
            raise ApiError(
                p.VALIDATION,
                "Prefer: wait is not supported for batches; poll GET /detect/batch/{uuid} or"
                " set callback_url",
                errors={"Prefer": ["synchronous mode is not supported for batches"]},
            )
        s = intake.settings
        submission = Submission(intake, team, request)
        batch_id = new_id()
        limits = UploadLimits(max_total_bytes=s.max_batch_bytes, max_files=s.max_batch_files)
        fields = frozenset({"files[]", "file"})
        probe_soon = submission.probe_soon(frozenset({"files[]"}))  # not the zip (`file`)
        form = await read_upload(request, intake, batch_id, fields, limits, probe_soon)
        submission.staged.keys.extend(f.blob_key for f in form.files)
        try:
            return await self._submit(submission, form, batch_id)
        except BaseException:
            await submission.fail()
            raise

    async def _submit(self, submission: Submission, form: Form, batch_id: str) -> Response[Any]:
        intake, s = submission.intake, submission.intake.settings
        fields = {f.field for f in form.files}
        if not form.files or fields == {"files[]", "file"}:
            raise ApiError(
                p.VALIDATION,
                "send exactly one of: files[] (1-50 media files) or file (one .zip archive)",
                errors={"files[]": ["exactly one of files[] and file is required"]},
            )
        if fields == {"file"} and len(form.files) > 1:
            raise ApiError(p.VALIDATION, "send one zip as `file`", errors={"file": ["only one"]})
        options = parse_options(list(form.fields), BATCH_FIELDS)
        await check_callback(intake, options)
        candidates = await unpack(
            list(form.files),
            batch_id,
            submission.staged,
            intake.blobs,
            submission.prober,
            max_files=s.max_batch_files,
            max_bytes=s.max_batch_bytes,
        )
        specs = await probe_all(candidates, submission.prober, options)
        fp = fingerprint("/detect/batch", list(form.fields), candidates)
        if (replayed := await submission.replay(fp)) is not None:
            return replayed
        return await submission.conclude(
            partial(self._conclude, submission, batch_id, specs, options)
        )

    async def _conclude(
        self, submission: Submission, batch_id: str, specs: list[FileSpec], options: DetectOptions
    ) -> Response[Any]:
        intake = submission.intake
        answer = await intake.submitter.submit(
            submission.team.team_id, batch_id, "batch", specs, options, new_id(), submission.staged
        )
        if answer == "rejected":
            raise await rejection(intake, batch_id)
        if answer == "abandoned":
            raise unanswered(intake)
        async with intake.pool.acquire() as conn:
            row = await views.batch_row(conn, submission.team.team_id, batch_id)
        assert row is not None
        body = item(views.batch_item(row))
        location = f"/api/v2/detect/batch/{batch_id}"
        response = Response(body, status_code=202, headers={"Location": location})
        return await submission.remember(response, body)

    @get(
        "/",
        summary="Your batches, newest first [ours]",
        operation_id="listDetectBatches",
        responses=doc.answers({200: (doc.BatchList, "A page of batches")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def list_batches(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            found = await views.batch_page(conn, team.team_id, page, page_size)
        return page_of(page, page_size, found.total, [views.batch_item(r) for r in found.rows])

    @get(
        "/{batch_uuid:str}",
        summary="A batch: status and counts, moving as its files finish",
        operation_id="deepfakeDetection_getDetectBatch",
        responses=doc.answers({200: (doc.BatchResponse, "The batch")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def get_batch(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        batch_uuid: FromPath[str],
    ) -> dict[str, Any]:
        batch_id = canonical_id(batch_uuid, "batch")
        async with intake.pool.acquire() as conn:
            row = await views.batch_row(conn, team.team_id, batch_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no batch {batch_uuid}")
        return item(views.batch_item(row))

    @post(
        "/{batch_uuid:str}/cancel",
        status_code=200,
        summary="Stop unfinished files, refund them [ours]",
        operation_id="cancelDetectBatch",
        responses=doc.answers({200: (doc.BatchResponse, "The cancelled batch")}, errors=(404, 409)),
        operation_class=doc.DOCUMENTED,
    )
    async def cancel(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        batch_uuid: FromPath[str],
    ) -> dict[str, Any]:
        batch_id = canonical_id(batch_uuid, "batch")
        async with intake.pool.acquire() as conn, conn.transaction():
            if await views.batch_row(conn, team.team_id, batch_id) is None:
                raise ApiError(p.NOT_FOUND, f"no batch {batch_uuid}")
            try:
                await intake.batches.execute(conn, batch_id, Cancel())
            except DomainError as exc:
                raise ApiError(p.CONFLICT, f"cannot cancel: {exc}") from exc
            row = await views.batch_row(conn, team.team_id, batch_id)
        assert row is not None
        return item(views.batch_item(row))
