"""HTTP pieces every service shares: the health endpoint and the server entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn
from litestar import Litestar, Response, get
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

from services.common.runtime import Runtime
from services.common.settings import CommonSettings


def health_handler(runtime: Runtime) -> Any:
    @get("/health", include_in_schema=False)
    async def health() -> Response[dict[str, Any]]:
        report = await runtime.health()
        return Response(report, status_code=200 if report["status"] == "ok" else 503)

    return health


def tracing_plugin() -> OpenTelemetryPlugin:
    """A server span per request, continuing the caller's `traceparent` when it sends one.

    Events the request causes carry this span's context through the outbox into Kafka.
    """
    return OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/health"]))


def serve(app: Litestar, settings: CommonSettings) -> None:
    """Run `app` until SIGINT/SIGTERM; uvicorn runs the lifespan (start and stop) around it."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging stays in charge
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )


S = TypeVar("S", bound=CommonSettings)


def main(build_app: Callable[[S], Litestar], settings_type: type[S]) -> None:
    """Entry point of every service: its settings from the environment, then serve."""
    settings = settings_type()
    serve(build_app(settings), settings)
