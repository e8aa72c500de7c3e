"""The batch and detect endpoints (API.md): uploads in, the saga's answer out, reads.

Handlers stay thin: parse and validate the request (uploads.py, options.py), stage and probe
the media (submission.py), let the saga decide (Submitter), render the read model (views.py).
Every error leaves as problem+json through errors.py; every failure before the saga took the
media deletes it (`Staged.discard`).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Stream
from pydantic import JsonValue

from contracts import problems as p
from contracts.events import DetectOptions
from contracts.ids import ID_PATTERN, new_id, normalize_id
from services.common import urlguard
from services.common.blobstore import BlobNotFoundError
from services.intake import idempotency, views
from services.intake.auth import Team
from services.intake.context import Intake
from services.intake.domain import Cancel, Delete, DomainError
from services.intake.errors import ApiError
from services.intake.fetch import FetchError, fetch
from services.intake.options import BATCH_FIELDS, SINGLE_FIELDS, parse_options
from services.intake.store import detect_key
from services.intake.submission import Answer, Candidate, Staged, probe_all, unpack
from services.intake.uploads import Form, UploadError, UploadLimits, read_form
from services.intake.wire import cents, item

MAX_JSON_BYTES = 64 * 1024
PageNumber = Annotated[int, Parameter(ge=1, description="1-based page number")]
PageSize = Annotated[int, Parameter(ge=10, le=1000, description="items per page (10-1000)")]


# --- request helpers -------------------------------------------------------------------------


def _id(raw: str, what: str) -> str:
    """The canonical id; a malformed one cannot exist, so it gets the same 404 as unknown ids."""
    canonical = normalize_id(raw)
    if not isinstance(canonical, str) or not ID_PATTERN.fullmatch(canonical):
        raise ApiError(p.NOT_FOUND, f"no {what} {raw}")
    return canonical


def prefer_wait(request: Request[Any, Any, Any]) -> float | None:
    """`Prefer: wait` (or RFC 7240 `wait=N`): how long the client wants to wait; None if not."""
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            value = value.strip().strip('"')
            return float(value) if value.replace(".", "", 1).isdigit() else math.inf
    return None


def _content_length(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


async def _read_upload(
    request: Request[Any, Any, Any],
    intake: Intake,
    prefix: str,
    file_fields: frozenset[str],
    limits: UploadLimits,
) -> Form:
    try:
        return await read_form(
            request.stream(),
            request.headers.get("content-type", ""),
            intake.blobs,
            key_for=lambda n: f"uploads/{prefix}/{n:03d}",
            file_fields=file_fields,
            limits=limits,
            content_length=_content_length(request),
        )
    except UploadError as exc:
        errors = {exc.field: [exc.message]} if exc.field else None
        if exc.status == 413:  # the rest of the body is not read: close instead of draining it
            raise ApiError(
                p.PAYLOAD_TOO_LARGE, exc.message, errors=errors, headers={"Connection": "close"}
            ) from exc
        raise ApiError(p.VALIDATION, exc.message, errors=errors) from exc


async def _check_callback(intake: Intake, options: DetectOptions) -> None:
    if options.callback_url is None:
        return
    try:
        await urlguard.check(options.callback_url, intake.allowlist)
    except urlguard.RefusedUrlError as exc:
        raise ApiError(p.VALIDATION, str(exc), errors={"callback_url": [str(exc)]}) from exc


def _fingerprint(path: str, fields: list[tuple[str, JsonValue]], files: list[Candidate]) -> str:
    return idempotency.fingerprint(
        "POST",
        path,
        [
            sorted(fields, key=lambda kv: (kv[0], str(kv[1]))),
            [(f.filename, f.sha256) for f in files],
        ],
    )


def _response(stored: idempotency.Stored) -> Response[Any]:
    return Response(stored.body, status_code=stored.status_code, headers=stored.headers)


async def _rejection(intake: Intake, batch_id: str, single: bool) -> ApiError:
    """The 402: the wallet's figures, per file, in cents."""
    async with intake.pool.acquire() as conn:
        figures: Any = await conn.fetchval(
            "SELECT rejection FROM batches WHERE batch_id = $1", batch_id
        )
    files = [
        {
            "filename": line["filename"],
            "media_type": line["media_type"],
            "duration_seconds": line["duration_seconds"],
            "estimated_cost_cents": cents(line["cost_micros"]),
        }
        for line in figures["lines"]
    ]
    details: dict[str, JsonValue] = {
        "required_cents": cents(figures["required_micros"]),
        "available_cents": cents(figures["available_micros"]),
        "shortfall_cents": cents(figures["shortfall_micros"]),
        "files": files,  # type: ignore[dict-item]
    }
    if single:
        details["estimated_cost_cents"] = cents(figures["required_micros"])
    return ApiError(
        p.INSUFFICIENT_FUNDS,
        f"the wallet's available {details['available_cents']} cents do not cover the"
        f" {details['required_cents']} cents this needs; nothing was created or charged",
        details=details,
    )


def _unanswered(intake: Intake) -> ApiError:
    return ApiError(
        p.UNAVAILABLE,
        f"the wallet did not decide within {intake.settings.wallet_timeout_seconds:g} s;"
        " nothing was created or charged, please retry",
        headers={"Retry-After": "5"},
    )


class Submission:
    """One POST's path from staged media to its answer, with idempotency and cleanup."""

    def __init__(self, intake: Intake, team: Team, request: Request[Any, Any, Any]) -> None:
        self.intake = intake
        self.team = team
        self.key = request.headers.get("idempotency-key")
        if self.key is not None:
            idempotency.check_key(self.key)
        self.staged = Staged(intake.blobs)
        self.claimed = False

    async def replay(self, fp: str) -> Response[Any] | None:
        """The first response for this Idempotency-Key, if this request repeats it."""
        if self.key is None:
            return None
        async with self.intake.pool.acquire() as conn:
            stored = await idempotency.claim(conn, self.team.team_id, self.key, fp)
        if stored is None:
            self.claimed = True
            return None
        await self.staged.discard()
        return _response(stored)

    async def remember(self, response: Response[Any], body: JsonValue) -> Response[Any]:
        if self.key is not None and self.claimed:
            headers = {k: v for k, v in response.headers.items() if k.lower() == "location"}
            stored = idempotency.Stored(response.status_code or 200, body, headers)
            async with self.intake.pool.acquire() as conn:
                await idempotency.remember(conn, self.team.team_id, self.key, stored)
            self.claimed = False
        return response

    async def fail(self) -> None:
        await self.staged.discard()
        if self.key is not None and self.claimed:
            async with self.intake.pool.acquire() as conn:
                await idempotency.release(conn, self.team.team_id, self.key)


# --- batches ---------------------------------------------------------------------------------


class BatchController(Controller):
    path = "/detect/batch"
    tags = ["batches"]

    @post(
        "/",
        summary="Upload 1-50 files (files[]) or one zip (file) for analysis",
        request_max_body_size=None,  # streamed and bounded by uploads.py, 413 as it crosses
        status_code=202,
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
        form = await _read_upload(request, intake, batch_id, frozenset({"files[]", "file"}), limits)
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
        await _check_callback(intake, options)
        candidates = await unpack(
            list(form.files),
            batch_id,
            submission.staged,
            intake.blobs,
            max_files=s.max_batch_files,
            max_bytes=s.max_batch_bytes,
        )
        specs = await probe_all(candidates, intake.blobs, options)
        fp = _fingerprint("/detect/batch", list(form.fields), candidates)
        if (replayed := await submission.replay(fp)) is not None:
            return replayed
        answer = await intake.submitter.submit(
            submission.team.team_id, batch_id, "batch", specs, options, request_id=new_id()
        )
        submission.staged.keys.clear()  # the saga owns the media now
        if answer == "rejected":
            raise await _rejection(intake, batch_id, single=False)
        if answer == "abandoned":
            raise _unanswered(intake)
        async with intake.pool.acquire() as conn:
            row = await views.batch_row(conn, submission.team.team_id, batch_id)
        assert row is not None
        body = item(views.batch_item(row))
        location = f"/api/v2/detect/batch/{batch_id}"
        response = Response(body, status_code=202, headers={"Location": location})
        return await submission.remember(response, body)

    @get("/", summary="Your batches, newest first")
    async def list_batches(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            found = await views.batch_page(conn, team.team_id, page, page_size)
        return _page(page, page_size, found.total, [views.batch_item(r) for r in found.rows])

    @get("/{batch_uuid:str}", summary="A batch: status and counts, moving as its files finish")
    async def get_batch(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake], batch_uuid: str
    ) -> dict[str, Any]:
        batch_id = _id(batch_uuid, "batch")
        async with intake.pool.acquire() as conn:
            row = await views.batch_row(conn, team.team_id, batch_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no batch {batch_uuid}")
        return item(views.batch_item(row))

    @post("/{batch_uuid:str}/cancel", status_code=200, summary="Stop unfinished files, refund them")
    async def cancel(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake], batch_uuid: str
    ) -> dict[str, Any]:
        batch_id = _id(batch_uuid, "batch")
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


def _page(page: int, page_size: int, total: int, items: list[Any]) -> dict[str, Any]:
    return {
        "success": True,
        "page": page,
        "num_pages": max(1, math.ceil(total / page_size)),
        "page_size": page_size,
        "total_count": total,
        "items": items,
    }


# --- single detects --------------------------------------------------------------------------


class DetectController(Controller):
    path = "/detect"
    tags = ["detects"]

    @post(
        "/",
        summary="Analyse one file (multipart `file`) or one URL (JSON `url`)",
        request_max_body_size=None,
        status_code=200,
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
                fields, candidate = await self._from_url(request, intake, submission, batch_id)
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
        form = await _read_upload(request, intake, batch_id, frozenset({"file"}), limits)
        submission.staged.keys.extend(f.blob_key for f in form.files)
        if not form.files:
            raise ApiError(
                p.VALIDATION,
                'send the media as multipart field `file`, or JSON {"url": ...}',
                errors={"file": ["required"]},
            )
        f = form.files[0]
        return list(form.fields), Candidate(f.filename, f.blob_key, f.size_bytes, f.sha256)

    async def _from_url(
        self, request: Request[Any, Any, Any], intake: Intake, submission: Submission, batch_id: str
    ) -> tuple[list[tuple[str, JsonValue]], Candidate]:
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_JSON_BYTES:
                raise ApiError(p.PAYLOAD_TOO_LARGE, f"JSON body over {MAX_JSON_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(p.VALIDATION, f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ApiError(
                p.VALIDATION, "JSON body needs a string `url`", errors={"url": ["required"]}
            )
        url = body.pop("url")
        fields: list[tuple[str, JsonValue]] = list(body.items())
        parse_options(fields, SINGLE_FIELDS)  # reject bad options before fetching anything
        key = f"uploads/{batch_id}/000"
        submission.staged.keys.append(key)
        s = intake.settings
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
        options = parse_options([kv for kv in fields if kv[0] != "url"], SINGLE_FIELDS)
        await _check_callback(intake, options)
        specs = await probe_all([candidate], intake.blobs, options)
        if (
            replayed := await submission.replay(_fingerprint("/detect", fields, [candidate]))
        ) is not None:
            return replayed
        answer: Answer = await intake.submitter.submit(
            submission.team.team_id, batch_id, "single", specs, options, request_id=new_id()
        )
        submission.staged.keys.clear()
        if answer == "rejected":
            raise await _rejection(intake, batch_id, single=True)
        if answer == "abandoned":
            raise _unanswered(intake)
        detect_id = specs[0].detect_id
        if wait is not None:
            seconds = min(wait, intake.settings.max_wait_seconds)
            await intake.progress.wait_for(
                detect_key(detect_id), lambda: _finished(intake, detect_id), seconds
            )
        async with intake.pool.acquire() as conn:
            row = await views.detect_row(conn, submission.team.team_id, detect_id)
        assert row is not None
        body = item(views.detect_item(row, intake.settings.public_url))
        return await submission.remember(Response(body, status_code=200), body)

    @get("/", summary="Your detects, newest first")
    async def list_detects(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            found = await views.detect_page(conn, team.team_id, page, page_size)
        public_url = intake.settings.public_url
        items = [views.detect_item(r, public_url) for r in found.rows]
        return _page(page, page_size, found.total, items)

    @get("/{detect_uuid:str}", summary="A detect and its result")
    async def get_detect(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake], detect_uuid: str
    ) -> dict[str, Any]:
        detect_id = _id(detect_uuid, "detect")
        async with intake.pool.acquire() as conn:
            row = await views.detect_row(conn, team.team_id, detect_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no detect {detect_uuid}")
        return item(views.detect_item(row, intake.settings.public_url))

    @get("/{detect_uuid:str}/media", summary="The analysed media, while it is retained")
    async def media(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake], detect_uuid: str
    ) -> Stream:
        detect_id = _id(detect_uuid, "detect")
        async with intake.pool.acquire() as conn:
            row = await views.detect_row(conn, team.team_id, detect_id)
        if row is None or row["media_deleted"] or row["options"]["zero_retention_mode"]:
            raise ApiError(p.NOT_FOUND, f"no retained media for detect {detect_uuid}")
        chunks = intake.blobs.read(row["blob_key"])

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    yield chunk
            except BlobNotFoundError:
                return

        return Stream(
            body(),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{row["filename"]}"'},
        )

    @delete("/{detect_uuid:str}", status_code=200, summary="Delete a finished detect and its media")
    async def delete_detect(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake], detect_uuid: str
    ) -> dict[str, Any]:
        detect_id = _id(detect_uuid, "detect")
        async with intake.pool.acquire() as conn, conn.transaction():
            row = await views.detect_row(conn, team.team_id, detect_id)
            if row is None:
                raise ApiError(p.NOT_FOUND, f"no detect {detect_uuid}")
            try:
                await intake.batches.execute(conn, row["batch_id"], Delete(detect_id=detect_id))
            except DomainError as exc:
                raise ApiError(p.CONFLICT, f"cannot delete: {exc}") from exc
        return {"success": True, "item": {"uuid": detect_id, "deleted": True}}


async def _finished(intake: Intake, detect_id: str) -> bool | None:
    async with intake.pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM detects WHERE detect_id = $1", detect_id)
    return True if status in ("completed", "failed") else None
