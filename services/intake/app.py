"""Composition root of the intake service: the public API, its consumers, its runtime."""

from __future__ import annotations

import secrets

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from contracts import public
from contracts.topics import CALLBACKS, DETECT_RESULTS, LEDGER, QUESTIONS, VOICEPRINTS, WALLET
from services.common import urlguard
from services.common.blobfactory import open_blob_store
from services.common.consumer import subscribe, with_inbox
from services.common.db import Pool
from services.common.http import request_metrics, service_handlers, tracing_plugin
from services.common.kafka_client import KafkaConnection
from services.common.runtime import Runtime
from services.common.topics_admin import ensure_topics
from services.intake.api import openapi
from services.intake.api.account import AccountController, CallbacksController
from services.intake.api.auth import authenticate
from services.intake.api.batches import BatchController
from services.intake.api.context import Intake
from services.intake.api.detects import DetectController
from services.intake.api.errors import EXCEPTION_HANDLERS
from services.intake.api.feedback import FeedbackController
from services.intake.api.headers import add_response_headers
from services.intake.api.identities import IdentityController
from services.intake.api.links import Links
from services.intake.api.media_tokens import MediaTokens
from services.intake.api.problems import ProblemController
from services.intake.api.public_events import PublicEvents
from services.intake.api.questions import QuestionController
from services.intake.api.ratelimit import RateLimiter
from services.intake.api.schemas import SchemaController
from services.intake.api.secure_uploads import SecureUploadController
from services.intake.api.tracings import TracingController
from services.intake.api.views import callback_renderer
from services.intake.api.visualizations import VisualizationController
from services.intake.saga import consumers
from services.intake.saga.commands import Batches
from services.intake.saga.progress import Progress
from services.intake.settings import IntakeSettings
from services.intake.store import deliveries, wallets
from services.intake.store.identities import Identities
from services.intake.store.schema import MIGRATIONS
from services.intake.uploads import janitor

GROUPS = (
    wallets.GROUP,
    deliveries.GROUP,
    consumers.FUNDS_GROUP,
    consumers.RESULTS_GROUP,
    consumers.VOICEPRINTS_GROUP,
    consumers.QUESTIONS_GROUP,
)


def public_events(settings: IntakeSettings, links: Links) -> PublicEvents:
    """In `per_team` mode a team's topics are created before its first event: intake's Kafka
    user needs Create on the `verity.public.team.` prefix (docs/events.md)."""
    kafka = KafkaConnection.from_settings(settings)

    async def team_topics(team_id: str) -> None:
        await ensure_topics(
            kafka,
            tuple(public.per_team_topic(t, team_id) for t in public.PUBLIC_TOPICS),
            partitions=settings.kafka_partitions,
            replication=settings.kafka_replication_factor,
        )

    return PublicEvents(links, settings.public_events, team_topics)


def build_app(settings: IntakeSettings) -> Litestar:
    blobs = open_blob_store(settings)
    signing_key = settings.url_signing_key.encode() or secrets.token_bytes(32)
    links = Links(settings.public_url, signing_key, settings.visualization_link_seconds)
    batches = Batches(blobs, callback_renderer(links), public_events(settings, links))
    identities = Identities(blobs)
    progress = Progress(settings.database_url)

    def wire(rt: Runtime) -> None:
        for topic, group, effect in (
            (LEDGER, wallets.GROUP, wallets.on_ledger_entry),
            (CALLBACKS, deliveries.GROUP, deliveries.on_attempt),
            (WALLET, consumers.FUNDS_GROUP, consumers.on_funds(batches)),
            (DETECT_RESULTS, consumers.RESULTS_GROUP, consumers.on_result(batches)),
            (VOICEPRINTS, consumers.VOICEPRINTS_GROUP, consumers.on_voiceprint(identities)),
            (QUESTIONS, consumers.QUESTIONS_GROUP, consumers.on_answer),
        ):
            subscribe(rt.broker, (topic,), group, with_inbox(rt.pool, group, effect))

    async def listen(rt: Runtime) -> None:
        await progress.run(rt.stopping)

    async def sweep(rt: Runtime) -> None:
        await janitor.run(
            rt.pool,
            blobs,
            rt.stopping,
            interval=settings.janitor_interval_seconds,
            grace_seconds=settings.orphan_grace_seconds,
        )

    runtime = Runtime(
        "intake",
        settings,
        migrations=MIGRATIONS,
        consumer_groups=GROUPS,
        topics=public.PUBLIC_TOPICS if settings.public_events == "shared" else (),
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
        media_tokens=MediaTokens(signing_key, settings.media_token_seconds),
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
        FeedbackController,
        DetectController,
        SecureUploadController,
        TracingController,
        QuestionController,
        IdentityController,
        VisualizationController,
    ]
    return Litestar(
        [
            *service_handlers(runtime),
            ProblemController,  # the pages each problem's `type` names, at the root
            SchemaController,  # the public events' JSON Schemas (their ce_dataschema)
            Router("/api/v2", route_handlers=api, security=openapi.SECURITY),
            # the same API where clients look for it: at / (API.md) and at /v2, where Resemble's
            # SDKs end up when their base URL is the bare host (`<base>v2/detect`); the OpenAPI
            # document lists each operation once, below /api/v2
            Router("/v2", route_handlers=api, include_in_schema=False),
            Router("/", route_handlers=api, include_in_schema=False),
        ],
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "intake": Provide(provide_intake, sync_to_thread=False),
            "team": Provide(authenticate),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_response_headers],
        middleware=[request_metrics("intake")],
        lifespan=[runtime.lifespan],
        plugins=[tracing_plugin()],
        # the UI at /docs, the document at /docs/openapi.json (api/openapi.py fills it in)
        openapi_config=OpenAPIConfig(
            title="Verity API",
            version="2",
            path="/docs",
            description=openapi.DESCRIPTION,
            components=openapi.COMPONENTS,
            tags=openapi.TAGS,
        ),
    )
