"""Notifier settings: the common ones plus callback delivery."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class NotifierSettings(CommonSettings):
    # Networks callbacks may reach besides the public internet, e.g. "127.0.0.1/32,::1" for a
    # receiver on this machine. Empty by default: private, loopback, link-local and metadata
    # addresses are refused.
    callback_allowlist: str = ""
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    callback_first_retry_seconds: float = Field(default=5.0, gt=0)
    callback_max_retry_seconds: float = Field(default=3600.0, gt=0)
    callback_horizon_seconds: float = Field(default=86_400.0, gt=0)
    dispatcher_poll_seconds: float = Field(default=1.0, gt=0)
