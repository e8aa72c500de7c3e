"""GET /audio_source_tracings[/{uuid}]: Resemble's list of source tracing reports.

Each report is a view of one completed detect that asked for `audio_source_tracing` (its uuid
is the detect's): the synthesizer family when the audio was judged fake, `real` when it was
judged real (api/views.py `tracing_item`). Paged and team-scoped like every list.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from contracts import problems as p
from services.intake.api import openapi as doc
from services.intake.api import views
from services.intake.api.auth import Team
from services.intake.api.batches import PageNumber, PageSize
from services.intake.api.context import Intake
from services.intake.api.posting import canonical_id, page_of
from services.intake.api.wire import item
from services.intake.errors import ApiError


class TracingController(Controller):
    path = "/audio_source_tracings"
    tags = ["detects"]

    @get(
        "/",
        summary="Your audio source tracing reports, newest first",
        operation_id="audioSourceTracing_listAudioSourceTracings",
        responses=doc.answers({200: (doc.TracingList, "A page of tracing reports")}, errors=(400,)),
        operation_class=doc.DOCUMENTED,
    )
    async def list_tracings(
        self,
        team: NamedDependency[Team],
        intake: NamedDependency[Intake],
        page: PageNumber = 1,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        async with intake.pool.acquire() as conn:
            found = await views.tracing_page(conn, team.team_id, page, page_size)
        return page_of(page, page_size, found.total, [views.tracing_item(r) for r in found.rows])

    @get(
        "/{tracing_uuid:str}",
        summary="One audio source tracing report",
        operation_id="audioSourceTracing_getAudioSourceTracing",
        responses=doc.answers({200: (doc.TracingResponse, "The report")}, errors=(404,)),
        operation_class=doc.DOCUMENTED,
    )
    async def get_tracing(
        self, team: NamedDependency[Team], intake: NamedDependency[Intake],
        tracing_uuid: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        tracing_id = canonical_id(tracing_uuid, "audio source tracing")
        async with intake.pool.acquire() as conn:
            row = await views.tracing_row(conn, team.team_id, tracing_id)
        if row is None:
            raise ApiError(p.NOT_FOUND, f"no audio source tracing {tracing_uuid}")
        return item(views.tracing_item(row))
