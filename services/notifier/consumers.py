"""The notifier's Kafka edge: a terminal batch with a callback_url schedules one delivery."""

from __future__ import annotations

import json

from faststream.kafka import KafkaBroker

from contracts import events as ev
from contracts.topics import BATCHES
from services.common.consumer import Effect, subscribe, with_inbox
from services.common.db import Conn, Pool
from services.notifier import store
from services.notifier.domain import Request, RetryPolicy, decide, webhook_id_for

GROUP = "notifier"


def payload_of(event: ev.BatchTerminal) -> str:
    """The exact body to POST: intake's rendering, or the batch's figures if it sent none."""
    body = event.callback_payload or {
        "success": True,
        "item": {
            "uuid": event.batch_id,
            "status": event.status,
            "total_files": event.total_files,
            "completed_count": event.completed_count,
            "failed_count": event.failed_count,
        },
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def handler(policy: RetryPolicy) -> Effect:
    async def on_event(conn: Conn, event: ev.Event) -> None:
        if not isinstance(event, ev.BatchTerminal) or not event.callback_url:
            return
        webhook_id = webhook_id_for(event.batch_id)
        current = await store.load(conn, webhook_id)
        request = Request(
            team_id=event.team_id,
            batch_id=event.batch_id,
            url=event.callback_url,
            payload=payload_of(event),
        )
        await store.record(conn, current, webhook_id, decide(current, request, policy))

    return on_event


def register(broker: KafkaBroker, pool: Pool, policy: RetryPolicy) -> None:
    subscribe(broker, (BATCHES,), GROUP, with_inbox(pool, GROUP, handler(policy)))
