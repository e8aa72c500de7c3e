"""Run one schema's outbox relay as its own process.

    python -m services.common.relay_cli --schema wallet

Services run the relay in-process; this entry point exists for operators (drain an outbox
while a service is down) and for the crash test that kills a relay mid-stream.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal

from services.common.db import create_pool
from services.common.kafka_client import KafkaConnection
from services.common.outbox import OutboxRelay, kafka_producer
from services.common.settings import CommonSettings
from services.common.telemetry import setup_logging


async def run(database_url: str, kafka: KafkaConnection, schema: str, batch_size: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool = await create_pool(database_url, schema, max_size=2)
    producer = kafka_producer(kafka)
    await producer.start()
    try:
        await OutboxRelay(pool, schema, producer, batch_size=batch_size).run(stop)
    finally:
        await producer.stop()
        await pool.close()


def main() -> None:
    settings = CommonSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    setup_logging("relay", settings.log_level)
    # the bootstrap may be overridden; TLS and SASL come from the same VERITY_KAFKA_* settings
    kafka = dataclasses.replace(KafkaConnection.from_settings(settings), bootstrap=args.bootstrap)
    asyncio.run(run(args.database_url, kafka, args.schema, args.batch_size))


if __name__ == "__main__":
    main()
