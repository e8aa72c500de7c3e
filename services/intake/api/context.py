"""What the batch and detect handlers need, built once by the composition root (app.py)."""

from __future__ import annotations

from services.common import urlguard
from services.common.blobstore import BlobStore
from services.common.db import Pool
from services.common.runtime import Runtime
from services.intake.api.links import Links
from services.intake.api.media_tokens import MediaTokens
from services.intake.api.ratelimit import RateLimiter
from services.intake.saga.commands import Batches
from services.intake.saga.progress import Progress
from services.intake.saga.submission import Submitter
from services.intake.settings import IntakeSettings
from services.intake.store.identities import Identities


class Intake:
    """A plain class on purpose: Litestar validates dataclass dependencies field by field."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        settings: IntakeSettings,
        blobs: BlobStore,
        batches: Batches,
        identities: Identities,
        links: Links,
        media_tokens: MediaTokens,
        progress: Progress,
        limiter: RateLimiter,
        allowlist: tuple[urlguard.Network, ...],
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.blobs = blobs
        self.batches = batches
        self.identities = identities
        self.links = links
        self.media_tokens = media_tokens
        self.progress = progress
        self.limiter = limiter
        self.allowlist = allowlist

    @property
    def pool(self) -> Pool:
        return self.runtime.pool

    @property
    def submitter(self) -> Submitter:
        return Submitter(
            self.pool, self.batches, self.progress, self.settings.wallet_timeout_seconds
        )
