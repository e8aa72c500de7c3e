"""Composition root of the intake service: the public API, its consumers, its runtime."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from contracts.topics import CALLBACKS, LEDGER
from services.common.consumer import subscribe, with_inbox
from services.common.db import Pool
from services.common.http import health_handler, tracing_plugin
from services.common.runtime import Runtime
from services.common.settings import CommonSettings
from services.intake import account, callbacks
from services.intake.api import AccountController, CallbacksController
from services.intake.auth import authenticate
from services.intake.errors import EXCEPTION_HANDLERS
from services.intake.schema import MIGRATIONS


def _wire(rt: Runtime) -> None:
    for topic, group, effect in (
        (LEDGER, account.GROUP, account.on_ledger_entry),
        (CALLBACKS, callbacks.GROUP, callbacks.on_attempt),
    ):
        subscribe(rt.broker, (topic,), group, with_inbox(rt.pool, group, effect))


def build_app(settings: CommonSettings) -> Litestar:
    runtime = Runtime(
        "intake",
        settings,
        migrations=MIGRATIONS,
        consumer_groups=(account.GROUP, callbacks.GROUP),
        wire=_wire,
    )

    def provide_pool() -> Pool:
        return runtime.pool

    api = [AccountController, CallbacksController]
    return Litestar(
        [
            health_handler(runtime),
            Router("/api/v2", route_handlers=api),
            Router("/", route_handlers=api),
        ],
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "team": Provide(authenticate),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[runtime.lifespan],
        plugins=[tracing_plugin()],
        openapi_config=OpenAPIConfig(title="Verity API", version="2", path="/docs"),
    )
