"""Composition root of the wallet service.

Today it starts, migrates its schema, relays its outbox and reports health; its domain logic
and consumers arrive with the wallet issue and are wired here.
"""

from __future__ import annotations

from litestar import Litestar

from services.common.http import health_handler
from services.common.runtime import Runtime
from services.common.settings import CommonSettings


def build_app(settings: CommonSettings) -> Litestar:
    runtime = Runtime("wallet", settings)
    return Litestar([health_handler(runtime)], lifespan=[runtime.lifespan])
