"""Wallet settings: the common ones plus prices (`VERITY_PRICES__AUDIO_PER_SECOND=1000`, ...)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings
from services.wallet.pricing import PriceList


class WalletSettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="VERITY_", env_nested_delimiter="__", extra="ignore", env_ignore_empty=True
    )

    prices: PriceList = PriceList()
