"""The wallet's Kafka edge: other services' events become wallet commands.

| event            | command                                                      |
|------------------|--------------------------------------------------------------|
| BatchRequested   | Reserve every file's projected cost, or reject the batch     |
| DetectCompleted  | Capture that file's actual cost (never above its reservation) |
| DetectFailed     | Release that file's reservation                              |
| BatchTerminal    | Release the files a cancel stopped (others settle one by one) |
| BatchAbandoned   | Release the whole reservation (the client never got a 202)   |
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from contracts import events as ev
from contracts.topics import BATCHES, DETECT_RESULTS
from services.common.consumer import Effect, subscribe, with_inbox
from services.common.db import Conn, Pool
from services.wallet.commands import execute
from services.wallet.domain import Capture, Command, Release, Reserve
from services.wallet.pricing import PriceList, price_file

log = logging.getLogger(__name__)

GROUP = "wallet"
TOPICS = (BATCHES, DETECT_RESULTS)


def command_for(event: ev.Event, prices: PriceList) -> Command | None:
    match event:
        case ev.BatchRequested(batch_id=batch_id, files=files, options=options):
            return Reserve(
                batch_id=batch_id, files=tuple(price_file(prices, f, options) for f in files)
            )
        case ev.DetectCompleted(batch_id=batch_id, detect_id=detect_id, analysed_seconds=s):
            return Capture(batch_id=batch_id, detect_id=detect_id, analysed_seconds=s)
        case ev.DetectFailed(batch_id=batch_id, detect_id=detect_id, error_code=code):
            return Release(
                batch_id=batch_id, detect_ids=(detect_id,), reason=f"detect failed: {code}"
            )
        case ev.BatchTerminal(batch_id=batch_id, cancelled_detect_ids=cancelled) if cancelled:
            return Release(
                batch_id=batch_id,
                detect_ids=cancelled,
                reason="batch cancelled",
                refund_captured=True,  # a result may have reached us before the cancel
            )
        case ev.BatchAbandoned(batch_id=batch_id, reason=reason):
            return Release(batch_id=batch_id, reason=f"batch abandoned: {reason}")
    return None


def handler(prices: PriceList) -> Effect:
    async def on_event(conn: Conn, event: ev.Event) -> None:
        command = command_for(event, prices)
        if command is None:
            return
        if isinstance(command, Reserve) and await conn.fetchval(
            "SELECT 1 FROM reservations WHERE batch_id = $1", command.batch_id
        ):
            log.warning(
                "batch decided already; ignoring a second request",
                extra={"fields": {"batch_id": command.batch_id}},
            )
            return
        await execute(conn, event.team_id, command, causation_id=event.event_id)

    return on_event


def register(broker: KafkaBroker, pool: Pool, prices: PriceList) -> None:
    subscribe(broker, TOPICS, GROUP, with_inbox(pool, GROUP, handler(prices)))
