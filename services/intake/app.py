"""Composition root of the intake service: the public API, its consumers, its runtime."""

from __future__ import annotations

import secrets

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from contracts.topics import CALLBACKS, DETECT_RESULTS, LEDGER, VOICEPRINTS, WALLET
from services.common import urlguard
from services.common.blobstore import FilesystemBlobStore
from services.common.consumer import subscribe, with_inbox
from services.common.db import Pool
from services.common.http import health_handler, tracing_plugin
from services.common.runtime import Runtime
from services.intake import account, callbacks, janitor, saga
from services.intake.api import AccountController, CallbacksController
from services.intake.auth import authenticate
from services.intake.batch_api import BatchController
from services.intake.commands import Batches
from services.intake.context import Intake
from services.intake.detect_api import DetectController
from services.intake.errors import EXCEPTION_HANDLERS
from services.intake.identity_api import IdentityController
from services.intake.identity_store import Identities
from services.intake.links import Links
from services.intake.progress import Progress
from services.intake.ratelimit import RateLimiter
from services.intake.schema import MIGRATIONS
from services.intake.settings import IntakeSettings
from services.intake.views import callback_renderer
from services.intake.visualization_api import VisualizationController

GROUPS = (
    account.GROUP,
    callbacks.GROUP,
    saga.FUNDS_GROUP,
    saga.RESULTS_GROUP,
    saga.VOICEPRINTS_GROUP,
)


def build_app(settings: IntakeSettings) -> Litestar:
    blobs = FilesystemBlobStore(settings.blob_root)
    signing_key = settings.url_signing_key.encode() or secrets.token_bytes(32)
    links = Links(settings.public_url, signing_key, settings.visualization_link_seconds)
    batches = Batches(blobs, callback_renderer(links))
    identities = Identities(blobs)
    progress = Progress(settings.database_url)

    def wire(rt: Runtime) -> None:
        for topic, group, effect in (
            (LEDGER, account.GROUP, account.on_ledger_entry),
            (CALLBACKS, callbacks.GROUP, callbacks.on_attempt),
            (WALLET, saga.FUNDS_GROUP, saga.on_funds(batches)),
            (DETECT_RESULTS, saga.RESULTS_GROUP, saga.on_result(batches)),
            (VOICEPRINTS, saga.VOICEPRINTS_GROUP, saga.on_voiceprint(identities)),
        ):
            subscribe(rt.broker, (topic,), group, with_inbox(rt.pool, group, effect))

    async def listen(rt: Runtime) -> None:
        await progress.run(rt.stopping)

    async def sweep(rt: Runtime) -> None:
        await janitor.run(
            rt.pool,
            settings.blob_root,
            rt.stopping,
            interval=settings.janitor_interval_seconds,
            grace_seconds=settings.orphan_grace_seconds,
        )

    runtime = Runtime(
        "intake",
        settings,
        migrations=MIGRATIONS,
        consumer_groups=GROUPS,
        wire=wire,
        background=(listen, sweep),
    )
    intake = Intake(
        runtime=runtime,
        settings=settings,
        blobs=blobs,
        batches=batches,
        identities=identities,
        links=links,
        progress=progress,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        allowlist=urlguard.parse_allowlist(settings.callback_allowlist),
    )

    def provide_pool() -> Pool:
        return runtime.pool

    def provide_intake() -> Intake:
        return intake

    api = [
        AccountController,
        CallbacksController,
        BatchController,
        DetectController,
        IdentityController,
        VisualizationController,
    ]
    return Litestar(
        [
            health_handler(runtime),
            Router("/api/v2", route_handlers=api),
            Router("/", route_handlers=api),
        ],
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "intake": Provide(provide_intake, sync_to_thread=False),
            "team": Provide(authenticate),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[runtime.lifespan],
        plugins=[tracing_plugin()],
        openapi_config=OpenAPIConfig(title="Verity API", version="2", path="/docs"),
    )
