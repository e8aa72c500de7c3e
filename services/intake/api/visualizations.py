"""GET /visualizations/{detect}.png: a detect's PNG behind a signed, expiring link (links.py).

The link is the credential: no API token is asked for, so a browser can show it directly. A
wrong or expired signature is a 403; a detect without a visualization (or
deleted since) is a 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from contracts import problems as p
from services.intake.api import openapi as doc
from services.intake.api.context import Intake
from services.intake.api.detects import blob_body
from services.intake.api.posting import canonical_id
from services.intake.errors import ApiError


class VisualizationController(Controller):
    path = "/visualizations"
    tags = ["detects"]

    @get(
        "/{name:str}",
        summary="A detect's visualization (PNG), by signed link [ours]",
        operation_id="getVisualization",
        media_type="image/png",
        content_media_type="image/png",
        response_description="The PNG",
        responses=doc.answers({}, errors=(400, 403, 404), public=True),
        operation_class=doc.PUBLIC,
    )
    async def visualization(
        self,
        intake: NamedDependency[Intake],
        name: FromPath[str],
        expires: FromQuery[int] = 0,
        signature: FromQuery[str] = "",
    ) -> Stream:
        detect_id = canonical_id(name.removesuffix(".png"), "visualization")
        if not intake.links.valid(detect_id, expires, signature):
            raise ApiError(p.FORBIDDEN, "this visualization link is invalid or has expired;"
                           " GET the detect again for a fresh one")  # fmt: skip
        async with intake.pool.acquire() as conn:
            result: Any = await conn.fetchval(
                "SELECT result FROM detects WHERE detect_id = $1", detect_id
            )
        found = (result or {}).get("visualization") or {}
        if not found.get("blob_key"):
            raise ApiError(p.NOT_FOUND, f"no visualization for {name}")
        return Stream(
            blob_body(intake, found["blob_key"]),
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=300"},
        )
