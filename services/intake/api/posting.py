"""What both POST handlers share: reading the upload, idempotency, cleanup, the answers.

Every failure before the saga took the media deletes it (`Submission.fail`); every error
leaves as problem+json through errors.py.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response
from pydantic import JsonValue

from contracts import problems as p
from contracts.events import DetectOptions
from contracts.ids import ID_PATTERN, normalize_id
from services.common import metrics, urlguard
from services.intake.api.auth import Team
from services.intake.api.context import Intake
from services.intake.api.wire import cents
from services.intake.errors import ApiError
from services.intake.saga.submission import Candidate, Prober, Staged
from services.intake.store import idempotency
from services.intake.uploads.multipart import (
    Form,
    UploadedFile,
    UploadError,
    UploadLimits,
    read_form,
)

# Requests whose batch was recorded finish even if their client left (Submission.conclude).
_CONCLUDING: set[asyncio.Task[Response[Any]]] = set()


MAX_JSON_BYTES = 64 * 1024  # the JSON bodies: {"url": ...} and the option fields


def canonical_id(raw: str, what: str) -> str:
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
            digits = value.isascii() and value.replace(".", "", 1).isdigit()  # not "²"
            return float(value) if digits else math.inf
    return None


def _content_length(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


async def read_upload(
    request: Request[Any, Any, Any],
    intake: Intake,
    prefix: str,
    file_fields: frozenset[str],
    limits: UploadLimits,
    on_file: Callable[[UploadedFile], None] | None = None,
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
            on_file=on_file,
        )
    except UploadError as exc:
        errors = {exc.field: [exc.message]} if exc.field else None
        if exc.status == 413:  # the rest of the body is not read: close instead of draining it
            raise ApiError(
                p.PAYLOAD_TOO_LARGE, exc.message, errors=errors, headers={"Connection": "close"}
            ) from exc
        raise ApiError(p.VALIDATION, exc.message, errors=errors) from exc


async def read_json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A JSON object body of at most MAX_JSON_BYTES (413 beyond, 400 if not an object)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise ApiError(p.PAYLOAD_TOO_LARGE, f"JSON body over {MAX_JSON_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(p.VALIDATION, f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(p.VALIDATION, "the JSON body must be an object")
    try:  # JSON may escape lone surrogates (\ud800), which no text column or event can hold
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise ApiError(p.VALIDATION, "the JSON body holds text that is not valid Unicode") from exc
    return body


async def check_callback(intake: Intake, options: DetectOptions) -> None:
    if options.callback_url is None:
        return
    try:
        await urlguard.check(options.callback_url, intake.allowlist)
    except urlguard.RefusedUrlError as exc:
        raise ApiError(p.VALIDATION, str(exc), errors={"callback_url": [str(exc)]}) from exc


def fingerprint(path: str, fields: list[tuple[str, JsonValue]], files: list[Candidate]) -> str:
    return idempotency.fingerprint(
        "POST",
        path,
        [
            sorted(fields, key=lambda kv: (kv[0], str(kv[1]))),
            [(f.filename, f.sha256) for f in files],
        ],
    )


def replayed_response(stored: idempotency.Stored) -> Response[Any]:
    return Response(stored.body, status_code=stored.status_code, headers=stored.headers)


async def rejection(intake: Intake, batch_id: str) -> ApiError:
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
    # Resemble's names for the same figure: what this request would cost
    details["estimated_cost_cents"] = details["detect_cost_cents"] = details["required_cents"]
    metrics.BATCHES_REJECTED.labels("insufficient_funds").inc()
    return ApiError(
        p.INSUFFICIENT_FUNDS,
        f"the wallet's available {details['available_cents']} cents do not cover the"
        f" {details['required_cents']} cents this needs; nothing was created or charged",
        details=details,
    )


def unanswered(intake: Intake) -> ApiError:
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
        self.prober = Prober(intake.blobs)
        self.claimed = False
        self.detached = False

    def probe_soon(self, media_fields: frozenset[str]) -> Callable[[UploadedFile], None]:
        """An `on_file` for read_upload: probe media parts while the rest streams in."""

        def on_file(stored: UploadedFile) -> None:
            if stored.field in media_fields:
                self.prober.start(stored.blob_key, stored.filename)

        return on_file

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
        return replayed_response(stored)

    async def remember(self, response: Response[Any], body: JsonValue) -> Response[Any]:
        if self.key is not None and self.claimed:
            headers = {k: v for k, v in response.headers.items() if k.lower() == "location"}
            stored = idempotency.Stored(response.status_code or 200, body, headers)
            async with self.intake.pool.acquire() as conn:
                await idempotency.remember(conn, self.team.team_id, self.key, stored)
            self.claimed = False
        return response

    async def conclude(self, work: Callable[[], Awaitable[Response[Any]]]) -> Response[Any]:
        """Run `work` (record the batch, wait, answer) to its end even if the client leaves.

        Once BatchRequested is recorded the batch proceeds whatever the client does. The
        Idempotency-Key must then get the answer, or a retry after a dropped connection would
        create, and charge, a second batch. So `work` runs as its own task, cleaning up after
        itself if it fails, and the request only waits for it.
        """
        self.detached = True

        async def run() -> Response[Any]:
            try:
                return await work()
            except BaseException:
                await self._clean_up()
                raise

        task = asyncio.create_task(run())
        _CONCLUDING.add(task)
        task.add_done_callback(_CONCLUDING.discard)
        return await asyncio.shield(task)

    async def fail(self) -> None:
        """The request failed before `conclude` took over: delete its media, free its key."""
        if not self.detached:
            await self._clean_up()

    async def _clean_up(self) -> None:
        await self.staged.discard()
        if self.key is not None and self.claimed:
            async with self.intake.pool.acquire() as conn:
                await idempotency.release(conn, self.team.team_id, self.key)


def page_of(page: int, page_size: int, total: int, items: list[Any]) -> dict[str, Any]:
    return {
        "success": True,
        "page": page,
        "num_pages": max(1, math.ceil(total / page_size)),
        "page_size": page_size,
        "total_count": total,
        "items": items,
    }
