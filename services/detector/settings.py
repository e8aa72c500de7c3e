"""Detector settings: the common ones plus the analysis limits."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings


class DetectorSettings(CommonSettings):
    # A file whose analysis takes longer fails with `timeout` (and is refunded). Must stay well
    # below the consumer's max.poll.interval (300 s) so the group never evicts a busy worker.
    analysis_timeout_seconds: float = Field(default=120.0, gt=0, le=240)
