"""Intake's Kafka edge: the wallet's decisions and the detector's results move batches on.

| event                        | command      | group           |
|------------------------------|--------------|-----------------|
| FundsReserved / FundsRejected | RecordFunds  | intake-saga     |
| DetectCompleted / DetectFailed | RecordResult | intake-results  |

Any intake replica may record a decision; the request waiting for it wakes through
LISTEN/NOTIFY (progress.py). A decision for a batch this intake never opened, a late or a
repeated one changes nothing (domain.decide).
"""

from __future__ import annotations

from contracts import events as ev
from services.common.consumer import Effect
from services.common.db import Conn
from services.intake.commands import Batches
from services.intake.domain import RecordFunds, RecordResult

FUNDS_GROUP = "intake-saga"
RESULTS_GROUP = "intake-results"


def on_funds(batches: Batches) -> Effect:
    async def effect(conn: Conn, event: ev.Event) -> None:
        if isinstance(event, ev.FundsReserved | ev.FundsRejected):
            await batches.execute(conn, event.batch_id, RecordFunds(decision=event))

    return effect


def on_result(batches: Batches) -> Effect:
    async def effect(conn: Conn, event: ev.Event) -> None:
        if isinstance(event, ev.DetectCompleted | ev.DetectFailed):
            await batches.execute(conn, event.batch_id, RecordResult(result=event))

    return effect
