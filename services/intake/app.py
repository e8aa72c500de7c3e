"""Composition root of the intake service.

Today: health, OpenAPI at /docs and the team/token tables the admin CLI manages. The batch API
and the saga (issue: intake) are wired here as they land.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from services.common.http import health_handler, tracing_plugin
from services.common.runtime import Runtime
from services.common.settings import CommonSettings
from services.intake.schema import MIGRATIONS


def build_app(settings: CommonSettings) -> Litestar:
    runtime = Runtime("intake", settings, migrations=MIGRATIONS)
    return Litestar(
        [health_handler(runtime)],
        lifespan=[runtime.lifespan],
        plugins=[tracing_plugin()],
        openapi_config=OpenAPIConfig(title="Verity API", version="2", path="/docs"),
    )
