"""Composition root of the wallet service: consumers that reserve, capture and release."""

from __future__ import annotations

from litestar import Litestar

from services.common.http import request_metrics, service_handlers
from services.common.runtime import Runtime
from services.wallet import consumers
from services.wallet.schema import MIGRATIONS
from services.wallet.settings import WalletSettings


def build_runtime(settings: WalletSettings) -> Runtime:
    return Runtime(
        "wallet",
        settings,
        migrations=MIGRATIONS,
        consumer_groups=(consumers.GROUP,),
        wire=lambda rt: consumers.register(rt.broker, rt.pool, settings.prices),
    )


def build_app(settings: WalletSettings) -> Litestar:
    runtime = build_runtime(settings)
    return Litestar(
        service_handlers(runtime),
        lifespan=[runtime.lifespan],
        middleware=[request_metrics("wallet")],
    )
