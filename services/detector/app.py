"""Composition root of the detector service.

Today it starts, migrates its schema, relays its outbox and reports health; its domain logic
and consumers arrive with the detector issue and are wired here.
"""

from __future__ import annotations

from litestar import Litestar

from services.common.http import health_handler
from services.common.runtime import Runtime
from services.common.settings import CommonSettings


def build_app(settings: CommonSettings) -> Litestar:
    runtime = Runtime("detector", settings)
    return Litestar([health_handler(runtime)], lifespan=[runtime.lifespan])
