"""Follow Verity's public detections: one JSON line per detect that reached a terminal state.

    pip install aiokafka cloudevents
    python public_consumer.py --bootstrap kafka:9092 [--team TEAM] [--limit N]

A starting point for a team's own consumer (docs/events.md): CloudEvents in Kafka binary mode,
committed after handling, deduplicated by (ce_source, ce_id) since delivery is at least once.
Keep `seen` in your own database, next to what `handle` writes, to survive restarts.
"""

import argparse
import asyncio
import json

from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event


def handle(event) -> None:  # type: ignore[no-untyped-def]
    item = event.get_data()  # the detect item, as GET /detect/{uuid} shows it
    verdict = item.get("metrics") or item.get("video_metrics") or item.get("image_metrics")
    line = {
        "type": event.get_type(),
        "detect": event.get_subject(),
        "team": event.get_extension("verityteam"),
        "filename": item["filename"],
        "status": item["status"],
        "label": (verdict or {}).get("label"),
        "error": item["error_message"],
    }
    print(json.dumps(line), flush=True)


async def follow(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    seen: set[tuple[str, str]] = set()
    try:
        async for record in consumer:
            message = KafkaMessage(dict(record.headers), record.key, record.value)
            event = from_binary_event(message)
            key = (event.get_source(), event.get_id())
            if key not in seen and args.team in (None, event.get_extension("verityteam")):
                handle(event)
                seen.add(key)
            await consumer.commit()
            if args.limit and len(seen) >= args.limit:
                return
    finally:
        await consumer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", default="verity.public.detections.v1")
    parser.add_argument("--group", default="case-management")
    parser.add_argument("--team", help="only this team's detects (a shared topic has them all)")
    parser.add_argument("--limit", type=int, help="stop after this many detects")
    asyncio.run(follow(parser.parse_args()))
