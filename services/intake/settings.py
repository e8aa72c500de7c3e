"""Intake settings: the common ones plus the API's limits and the saga's patience."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.common.settings import CommonSettings

MB = 1024 * 1024


class IntakeSettings(CommonSettings):
    # Where clients reach this API; media and visualization URLs in detect items start with it.
    public_url: str = "http://127.0.0.1:8000"
    # Public events for other teams (docs/events.md): `shared` publishes every team's terminal
    # detects and batches on verity.public.{detections,batches}.v1; `per_team` on a topic pair
    # per team (intake creates them on first use), for ACLs that keep teams apart; `off`: none.
    public_events: Literal["off", "shared", "per_team"] = "shared"
    # How long POST /detect/batch waits for the wallet's decision before answering 503.
    wallet_timeout_seconds: float = Field(default=10.0, gt=0)
    rate_limit_per_second: float = Field(default=40.0, gt=0)
    rate_limit_burst: float = Field(default=40.0, ge=1)
    max_batch_bytes: int = Field(default=500 * MB, gt=0)
    max_single_bytes: int = Field(default=150 * MB, gt=0)
    max_batch_files: int = Field(default=50, ge=1)
    # `Prefer: wait` on POST /detect holds the request at most this long (API.md: 120 s).
    max_wait_seconds: float = Field(default=120.0, gt=0)
    # Networks a callback_url or a media URL may point to besides the public internet
    # (the notifier reads the same variable, VERITY_CALLBACK_ALLOWLIST).
    callback_allowlist: str = ""
    fetch_timeout_seconds: float = Field(default=60.0, gt=0)
    # Staged uploads no batch owns (a request died before BatchRequested) are deleted once
    # untouched this long (longer than any upload takes); the janitor looks this often.
    orphan_grace_seconds: float = Field(default=6 * 3600.0, gt=0)
    janitor_interval_seconds: float = Field(default=600.0, gt=0)
    # POST /identity and /identity/search wait this long for the detector's voiceprint.
    identity_wait_seconds: float = Field(default=30.0, gt=0)
    # Signs visualization links (api/links.py); every replica needs the same key. Empty: a random
    # key per process, so links die with it (fine for one local process, not for a cluster).
    url_signing_key: str = ""
    visualization_link_seconds: float = Field(default=3600.0, gt=0)
    # A POST /secure_uploads token is good for one /detect within this long (Resemble: 1 h).
    media_token_seconds: float = Field(default=3600.0, gt=0)
