"""POST /secure_uploads: store one file now, analyse it later by its `media_token`.

What Resemble's SDKs do for every local file: upload it here (multipart `file`, up to the
single-upload limit, streamed into the blob store like every upload), then POST /detect with
JSON `{"media_token": ...}`. The answer is Resemble's `{"success": true, "token": ...}` with
the upload's facts beside it. The token is bound to the team, expires (media_token_seconds)
and is good for one detect (api/media_tokens.py, store/secure_uploads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency

from contracts import problems as p
from contracts.ids import new_id
from services.intake.api import openapi as doc
from services.intake.api.auth import Team
from services.intake.api.context import Intake
from services.intake.api.posting import MAX_JSON_BYTES, read_upload
from services.intake.api.wire import timestamp
from services.intake.errors import ApiError
from services.intake.saga.submission import Staged
from services.intake.store import secure_uploads
from services.intake.uploads.multipart import UploadLimits
from services.intake.uploads.probe import media_type_for


def blob_key(upload_id: str) -> str:
    return f"secure/{upload_id}/000"


class SecureUploadController(Controller):
    path = "/secure_uploads"
    tags = ["detects"]

    @post(
        "/",
        summary="Upload one file for a later POST /detect with its media_token",
        request_max_body_size=None,
        status_code=200,
        operation_id="secureUploads_createSecureUpload",
        responses=doc.answers(
            {200: (doc.SecureUploadResponse, "Stored: its media_token")}, errors=(400, 413)
        ),
        operation_class=doc.operation(doc.SECURE_UPLOAD),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
    ) -> dict[str, Any]:
        upload_id = new_id()
        staged = Staged(intake.blobs)
        limit = intake.settings.max_single_bytes
        limits = UploadLimits(max_total_bytes=limit + MAX_JSON_BYTES, max_file_bytes=limit,
                              max_files=1)  # fmt: skip
        try:
            form = await read_upload(request, intake, upload_id, frozenset({"file"}), limits)
            staged.keys.extend(f.blob_key for f in form.files)
            _check(form.fields, [f.filename for f in form.files])
            stored = form.files[0]
            await intake.blobs.move(stored.blob_key, blob_key(upload_id))
            staged.keys = [blob_key(upload_id)]
            token, expires = intake.media_tokens.issue(team.team_id, upload_id)
            upload = secure_uploads.Upload(
                upload_id, blob_key(upload_id), stored.filename, stored.size_bytes,
                stored.sha256, datetime.fromtimestamp(expires, UTC),
            )  # fmt: skip
            async with intake.pool.acquire() as conn:
                await secure_uploads.record(conn, team.team_id, upload)
            staged.keys.clear()
        finally:
            await staged.discard()
        return {
            "success": True,
            "token": token,
            "item": {
                "uuid": upload_id,
                "media_token": token,
                "filename": upload.filename,
                "size_bytes": upload.size_bytes,
                "sha256": upload.sha256,
                "expires_at": timestamp(upload.expires_at),
            },
        }


def _check(fields: Sequence[tuple[str, str]], filenames: list[str]) -> None:
    if fields:
        names = sorted({name for name, _ in fields})
        raise ApiError(
            p.VALIDATION,
            f"POST /secure_uploads takes only the multipart field `file`; got {', '.join(names)}",
            errors={name: ["unknown field"] for name in names},
        )
    if not filenames:
        raise ApiError(p.VALIDATION, "send the media as multipart field `file`",
                       errors={"file": ["required"]})  # fmt: skip
    if media_type_for(filenames[0]) is None:
        raise ApiError(
            p.VALIDATION,
            f"{filenames[0]!r}: not an allowed audio, video or image file name",
            errors={"file": ["extension not allowed"]},
        )
