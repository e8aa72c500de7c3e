"""The identity endpoints (API.md "Identities"): save a voice, list, delete, search.

A sample arrives like a single detect's file (multipart `file`, or JSON `url`) and is probed
the same way; it must be audio, or a video with sound. The detector computes its voiceprint
(VoiceprintRequested / VoiceprintComputed on Kafka) while the request waits up to
`identity_wait_seconds`:
- POST /identity: 201 with the ready identity; 422 when the sample holds too little speech
  (nothing is saved); 202 with `status: processing` when the detector is slower than the wait
  (GET /identity/{uuid} tells when it is ready).
- POST /identity/search: the nearest saved identities (domain/matching.py), or 422 / 503.
Identity operations are not billed (docs/intake.md).
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from contracts import events as ev
from contracts import problems as p
from contracts.ids import new_id
from services.common import outbox
from services.intake.api import openapi as doc
from services.intake.api import views
from services.intake.api.auth import Team
from services.intake.api.batches import PageNumber, PageSize
from services.intake.api.context import Intake
from services.intake.api.posting import (
    MAX_JSON_BYTES,
    canonical_id,
    page_of,
    read_json_body,
    read_upload,
)
from services.intake.api.wire import item
from services.intake.domain import identity as identities
from services.intake.domain import matching
from services.intake.errors import ApiError
from services.intake.store import identities as store
from services.intake.uploads import probe
from services.intake.uploads.fetch import FetchError, fetch
from services.intake.uploads.multipart import UploadLimits

TOP_K_DEFAULT, TOP_K_MAX = 5, 20
SAMPLE_FAULTS = frozenset({"no_speech", "unsupported_media"})  # the sample's fault: fix, resend


def _refused(what: str, code: str | None, message: str | None) -> ApiError:
    """The sample's fault is 422; the detector's (no model, timeout, crash) is 503: retry."""
    if code in SAMPLE_FAULTS:
        return ApiError(p.UNPROCESSABLE, f"{what}: {message}")
    return ApiError(p.UNAVAILABLE, f"{what}: the detector failed ({code}: {message}); retry",
                    headers={"Retry-After": "5"})  # fmt: skip


class Sample:
    """One uploaded or fetched voice sample in the blob store, deleted unless kept."""

    def __init__(self, intake: Intake, request_id: str) -> None:
        self.intake = intake
        self.key = f"uploads/{request_id}/000"
        self.fields: dict[str, Any] = {}
        self.media_type: ev.MediaType = "audio"
        self.kept = False

    async def read(self, request: Request[Any, Any, Any]) -> None:
        """Store the sample (multipart `file` or JSON `url`) and the other fields; probe it."""
        s = self.intake.settings
        if request.headers.get("content-type", "").lower().startswith("application/json"):
            body = await read_json_body(request)
            url = body.pop("url", None)
            if not isinstance(url, str):
                raise ApiError(p.VALIDATION, "send `url` (JSON) or `file` (multipart)",
                               errors={"url": ["required"]})  # fmt: skip
            self.fields = body
            try:
                fetched = await fetch(
                    url, self.intake.blobs, self.key, allowlist=self.intake.allowlist,
                    max_bytes=s.max_single_bytes, timeout_seconds=s.fetch_timeout_seconds,
                )  # fmt: skip
            except FetchError as exc:
                kind = p.PAYLOAD_TOO_LARGE if exc.too_large else p.VALIDATION
                raise ApiError(kind, str(exc), errors={"url": [str(exc)]}) from exc
            filename = fetched.filename
        else:
            limits = UploadLimits(
                max_total_bytes=s.max_single_bytes + MAX_JSON_BYTES,
                max_file_bytes=s.max_single_bytes,
                max_files=1,
            )
            prefix = self.key.split("/")[1]
            form = await read_upload(request, self.intake, prefix, frozenset({"file"}), limits)
            self.fields = dict(form.fields)
            if not form.files:
                raise ApiError(p.VALIDATION, "send the voice sample as multipart field `file`",
                               errors={"file": ["required"]})  # fmt: skip
            filename = form.files[0].filename
        try:
            async with self.intake.blobs.local_copy(self.key) as path:
                probed = await asyncio.to_thread(probe.probe_file, path, filename)
        except probe.MediaRejectedError as exc:
            raise ApiError(p.VALIDATION, exc.reason, errors={filename: [exc.reason]}) from exc
        if probed.media_type == "image":
            reason = "a voice sample must be audio, or a video with sound"
            raise ApiError(p.VALIDATION, reason, errors={filename: [reason]})
        self.media_type = probed.media_type

    async def discard(self) -> None:
        if not self.kept:
            await self.intake.blobs.delete(self.key)


def _name(fields: dict[str, Any]) -> str:
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(p.VALIDATION, "`name` is required", errors={"name": ["required"]})
    name = name.strip()
    if any(unicodedata.category(c) == "Cc" for c in name):
        message = "control characters are not allowed"
        raise ApiError(p.VALIDATION, f"`name`: {message}", errors={"name": [message]})
    if len(name) > identities.MAX_NAME:
        message = f"at most {identities.MAX_NAME} characters"
        raise ApiError(p.VALIDATION, f"`name`: {message}", errors={"name": [message]})
    return name


def _top_k(fields: dict[str, Any]) -> int:
    raw = fields.get("top_k", TOP_K_DEFAULT)
    try:
        top_k = int(raw)
    except (TypeError, ValueError):
        top_k = 0
    if str(raw).strip() != str(top_k) or not 1 <= top_k <= TOP_K_MAX:
        message = f"an integer from 1 to {TOP_K_MAX}"
        raise ApiError(p.VALIDATION, f"`top_k`: {message}", errors={"top_k": [message]})
    return top_k


class IdentityController(Controller):
    path = "/identity"
    tags = ["identities"]

    @post(
        "/",
        summary="Save a voice identity from a sample",
        request_max_body_size=None,
        status_code=200,
        operation_id="identity_createIdentity",
        responses=doc.answers(
            {
                200: (doc.IdentityResponse, "Saved, its voiceprint ready"),
                202: (doc.IdentityResponse, "[ours] Saved, its voiceprint still being computed"),
            },
            errors=(400, 413, 422, 503),
        ),
        operation_class=doc.operation(doc.IDENTITY),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
    ) -> Response[Any]:
        identity_id = new_id()
        sample = Sample(intake, identity_id)
        try:
            await sample.read(request)
            name = _name(sample.fields)
            enroll = identities.Enroll(
                team_id=team.team_id, name=name, blob_key=sample.key, media_type=sample.media_type
            )
            async with intake.pool.acquire() as conn, conn.transaction():
                await intake.identities.execute(conn, identity_id, enroll)
            sample.kept = True  # the identity owns it now; it goes once the voiceprint is known
        finally:
            await sample.discard()
        row = await intake.progress.wait_for(
            store.identity_key(identity_id),
            lambda: _settled(intake, team.team_id, identity_id),
            intake.settings.identity_wait_seconds,
        )
        if row is None:
            async with intake.pool.acquire() as conn:
                row = await views.identity_row(conn, team.team_id, identity_id)
            assert row is not None
            return Response(item(views.identity_item(row)), status_code=202)
        if row["status"] == "failed":
            async with intake.pool.acquire() as conn, conn.transaction():
                await intake.identities.execute(
                    conn, identity_id, identities.Delete(team_id=team.team_id)
                )
            raise _refused("no identity saved", row["error_code"], row["error_message"])
        return Response(item(views.identity_item(row)), status_code=200)  # Resemble: 200

    @get(
        "/",
        summary="Your saved identities, newest first",
        operation_id="identity_listIdentities",
        responses=doc.answers({200: (doc.IdentityList, "A page of identities")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def list_identities(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
        search: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        if search is not None and "\x00" in search:
            raise ApiError(p.VALIDATION, "`search` may not hold NUL", errors={"search": ["NUL"]})
        async with intake.pool.acquire() as conn:
            rows, total = await views.identity_page(conn, team.team_id, page, page_size, search)
        return page_of(page, page_size, total, [views.identity_item(r) for r in rows])

    @get(
        "/{identity_uuid:str}",
        summary="One saved identity [ours]",
        operation_id="getIdentity",
        responses=doc.answers({200: (doc.IdentityResponse, "The identity")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def get_identity(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        identity_uuid: FromPath[str],
    ) -> dict[str, Any]:
        identity_id = canonical_id(identity_uuid, "identity")
        async with intake.pool.acquire() as conn:
            row = await views.identity_row(conn, team.team_id, identity_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no identity {identity_uuid}")
        return item(views.identity_item(row))

    @delete(
        "/{identity_uuid:str}",
        status_code=200,
        summary="Delete a saved identity",
        operation_id="identity_deleteIdentity",
        responses=doc.answers({200: (doc.DeleteResponse, "Deleted")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def delete_identity(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        identity_uuid: FromPath[str],
    ) -> dict[str, Any]:
        identity_id = canonical_id(identity_uuid, "identity")
        async with intake.pool.acquire() as conn, conn.transaction():
            if await views.identity_row(conn, team.team_id, identity_id) is None:
                raise ApiError(p.NOT_FOUND, f"no identity {identity_uuid}")
            await intake.identities.execute(
                conn, identity_id, identities.Delete(team_id=team.team_id)
            )
        return {
            "success": True,
            "message": f"identity {identity_id} deleted",
            "item": {"uuid": identity_id, "deleted": True},
        }

    @post(
        "/search",
        summary="Saved identities nearest to a voice sample",
        request_max_body_size=None,
        status_code=200,
        operation_id="identity_searchIdentities",
        responses=doc.answers(
            {200: (doc.IdentitySearchResponse, "The nearest identities")},
            errors=(400, 413, 422, 503),
        ),
        operation_class=doc.operation(doc.IDENTITY_SEARCH),
    )
    async def search(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
    ) -> dict[str, Any]:
        request_id = new_id()
        sample = Sample(intake, request_id)
        try:
            await sample.read(request)
            top_k = _top_k(sample.fields)
            asked = ev.VoiceprintRequested(
                team_id=team.team_id, correlation_id=request_id, request_id=request_id,
                purpose="search", blob_key=sample.key, media_type=sample.media_type,
            )  # fmt: skip
            async with intake.pool.acquire() as conn, conn.transaction():
                await outbox.enqueue(conn, [asked])
            answer = await intake.progress.wait_for(
                store.answer_key(request_id),
                lambda: _answer(intake, request_id),
                intake.settings.identity_wait_seconds,
            )
        finally:
            await sample.discard()
            async with intake.pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM voiceprint_answers WHERE request_id = $1", request_id
                )
        if answer is None:
            raise ApiError(
                p.UNAVAILABLE,
                f"no voiceprint within {intake.settings.identity_wait_seconds:g} s; retry",
                headers={"Retry-After": "5"},
            )
        if answer["embedding"] is None:
            raise _refused("cannot search", answer["error_code"], answer["error_message"])
        async with intake.pool.acquire() as conn:
            saved = await store.saved_voiceprints(conn, team.team_id)
        found = matching.nearest(answer["embedding"], saved, answer["same_speaker"], top_k)
        # Resemble's shape: `item` keyed by identity uuid (nearest first); `matches` [ours] is
        # the same ranking as a list
        keyed = {str(m.pop("uuid")): m for m in (dict(m) for m in found if isinstance(m, dict))}
        return {"success": True, "modality": "audio", "item": keyed, "matches": found}


async def _settled(intake: Intake, team_id: str, identity_id: str) -> Any:
    async with intake.pool.acquire() as conn:
        row = await views.identity_row(conn, team_id, identity_id)
    return row if row is not None and row["status"] != "processing" else None


async def _answer(intake: Intake, request_id: str) -> Any:
    async with intake.pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT embedding, same_speaker, error_code, error_message FROM voiceprint_answers"
            " WHERE request_id = $1",
            request_id,
        )
