"""GET /events/schemas/{file}: the JSON Schemas that public events name in `ce_dataschema`.

The files are the committed ones (contracts/schemas/public, generated from contracts/public.py
and checked for compatibility in CI), so what a consumer fetches is exactly what is published.
They describe no secret and need no token, like the problem pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar import Controller, get
from litestar.params import FromPath

from contracts import problems as p
from contracts import schemas as schema_files
from services.intake.api import openapi as doc
from services.intake.api.public_events import SCHEMAS_PATH
from services.intake.errors import ApiError


def _load(directory: Path = schema_files.ROOT / "public") -> dict[str, dict[str, Any]]:
    return {f.name: json.loads(f.read_text()) for f in sorted(directory.glob("*.json"))}


class SchemaController(Controller):
    path = SCHEMAS_PATH
    tags = ["events"]

    @get(
        "/{name:str}",
        summary="The JSON Schema of a public event's data (its `ce_dataschema`)",
        operation_id="getEventSchema",
        media_type="application/schema+json",
        response_description="A JSON Schema, draft 2020-12",
        responses=doc.answers({}, errors=(404,), public=True),
        operation_class=doc.PUBLIC,
    )
    async def event_schema(self, name: FromPath[str]) -> dict[str, Any]:
        schema = SCHEMAS.get(name)
        if schema is None:
            known = ", ".join(SCHEMAS) or "none"
            raise ApiError(p.NOT_FOUND, f"no event schema {name!r} (there are: {known})")
        return schema


SCHEMAS = _load()
