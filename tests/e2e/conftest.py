"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.runtime import Runtime
from services.wallet.app import build_runtime
from services.wallet.settings import WalletSettings
from tests.support.infra import Infra


@pytest.fixture(scope="module")
async def wallet(infra: Infra) -> AsyncIterator[Runtime]:
    """The real wallet service, in this process, for one test module."""
    runtime = build_runtime(
        WalletSettings(database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap)
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
