"""HTTP pieces every service shares: probes, /metrics, request metrics, the server entry point.

Probes follow Kubernetes' split: `/livez` says only that the process answers (a liveness probe
that checked Kafka would restart every pod during a broker outage), `/readyz` that PostgreSQL
and Kafka answer and start-up finished, `/startupz` that start-up (for the detector: loading
its models) finished. `/health` is `/readyz` with the same report, for humans and `./dev`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn
from litestar import Litestar, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import ScopeType
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.common import metrics
from services.common.runtime import Runtime
from services.common.settings import CommonSettings


def service_handlers(runtime: Runtime) -> list[Any]:
    """The probes and /metrics, bound to this service's runtime."""

    @get(["/readyz", "/health"], include_in_schema=False, cache_control=_NO_STORE)
    async def ready() -> Response[dict[str, Any]]:
        report = await runtime.health()
        return Response(report, status_code=200 if report["status"] == "ok" else 503)

    @get("/livez", include_in_schema=False, cache_control=_NO_STORE)
    async def live() -> dict[str, str]:
        return {"status": "alive", "service": runtime.service}

    @get("/startupz", include_in_schema=False, cache_control=_NO_STORE)
    async def startup() -> Response[dict[str, str]]:
        status = "started" if runtime.started else "starting"
        body = {"status": status, "service": runtime.service}
        return Response(body, status_code=200 if runtime.started else 503)

    @get("/metrics", include_in_schema=False, cache_control=_NO_STORE)
    async def metrics_page() -> Response[bytes]:
        return Response(await runtime.metrics(), media_type=metrics.CONTENT_TYPE)

    return [ready, live, startup, metrics_page]


PROBES = ("/livez", "/readyz", "/startupz", "/health", "/metrics")
_NO_STORE = CacheControlHeader(no_store=True)


def request_metrics(service: str) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware: count and time every HTTP request by its route template.

    The template (`/api/v2/detect/{uuid:str}`), not the path, keeps the label set small.
    Probes and /metrics are left out: they would dominate the counts and say nothing.
    """

    def middleware(app: ASGIApp) -> ASGIApp:
        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"] in PROBES:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500  # what the client sees when the app raises before responding

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                route = scope.get("path_template") or "<unmatched>"
                seconds = time.perf_counter() - started
                metrics.observe_request(service, scope["method"], route, status, seconds)

        return timed

    return middleware


def tracing_plugin() -> OpenTelemetryPlugin:
    """A server span per request, continuing the caller's `traceparent` when it sends one.

    Events the request causes carry this span's context through the outbox into Kafka.
    """
    return OpenTelemetryPlugin(OpenTelemetryConfig(exclude=list(PROBES)))


def serve(app: Litestar, settings: CommonSettings) -> None:
    """Run `app` until SIGINT/SIGTERM; uvicorn runs the lifespan (start and stop) around it."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging stays in charge
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=round(settings.shutdown_grace_seconds),
    )


S = TypeVar("S", bound=CommonSettings)


def main(build_app: Callable[[S], Litestar], settings_type: type[S]) -> None:
    """Entry point of every service: its settings from the environment, then serve."""
    settings = settings_type()
    serve(build_app(settings), settings)
