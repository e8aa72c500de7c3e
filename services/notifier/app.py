"""Composition root of the notifier: BatchTerminal -> durable schedule -> signed callbacks."""

from __future__ import annotations

from litestar import Litestar

from services.common.http import request_metrics, service_handlers
from services.common.runtime import Runtime
from services.common.urlguard import parse_allowlist
from services.notifier import consumers
from services.notifier.dispatcher import Dispatcher
from services.notifier.domain import RetryPolicy
from services.notifier.schema import MIGRATIONS
from services.notifier.sender import Sender
from services.notifier.settings import NotifierSettings


def build_runtime(settings: NotifierSettings) -> Runtime:
    policy = RetryPolicy(
        first_delay_seconds=settings.callback_first_retry_seconds,
        max_delay_seconds=settings.callback_max_retry_seconds,
        horizon_seconds=settings.callback_horizon_seconds,
    )

    async def dispatch(rt: Runtime) -> None:
        sender = Sender(
            allowlist=parse_allowlist(settings.callback_allowlist),
            timeout_seconds=settings.callback_timeout_seconds,
        )
        try:
            dispatcher = Dispatcher(
                rt.pool, sender, policy, poll_seconds=settings.dispatcher_poll_seconds
            )
            await dispatcher.run(rt.stopping)
        finally:
            await sender.close()

    return Runtime(
        "notifier",
        settings,
        migrations=MIGRATIONS,
        consumer_groups=(consumers.GROUP,),
        wire=lambda rt: consumers.register(rt.broker, rt.pool, policy),
        background=(dispatch,),
    )


def build_app(settings: NotifierSettings) -> Litestar:
    runtime = build_runtime(settings)
    return Litestar(
        service_handlers(runtime),
        lifespan=[runtime.lifespan],
        middleware=[request_metrics("notifier")],
    )
