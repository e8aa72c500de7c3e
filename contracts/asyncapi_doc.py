"""Generate the AsyncAPI 3 document for Verity's topics from the contracts themselves.

    python -m contracts.asyncapi_doc           # rewrite contracts/asyncapi/verity.asyncapi.json
    python -m contracts.asyncapi_doc --check   # exit 1 when the committed document is stale

The document is derived from `ROUTES` and the pydantic schemas, so it cannot drift from the
code without the check (run by the test suite) failing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts import headers
from contracts.events import EVENT_TYPES
from contracts.topics import ROUTES

DOCUMENT_PATH = Path(__file__).parent / "asyncapi" / "verity.asyncapi.json"


def _channel_id(topic: str) -> str:
    return topic.removeprefix("verity.").replace(".", "-")


def build() -> dict[str, Any]:
    _, schema_doc = models_json_schema(
        [(model, "validation") for model in EVENT_TYPES],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = schema_doc["$defs"]
    header_schema = {
        "type": "object",
        "properties": {
            headers.EVENT_ID: {"type": "string", "description": "the event's event_id"},
            headers.EVENT_TYPE: {"type": "string"},
            headers.SCHEMA_VERSION: {"type": "string"},
            headers.CONTENT_TYPE: {"type": "string", "const": headers.JSON},
            headers.TRACEPARENT: {"type": "string", "description": "W3C trace context"},
            headers.TRACESTATE: {"type": "string"},
        },
        "required": [headers.EVENT_ID, headers.EVENT_TYPE],
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, r in ROUTES.items():
        name = event_type.__name__
        channel_id = _channel_id(r.topic)
        channel = channels.setdefault(channel_id, {"address": r.topic, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (event_type.__doc__ or "").strip().splitlines()[0],
            "contentType": headers.JSON,
            "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": r.key_doc}}},
        }
        message_ref = [{"$ref": f"#/channels/{channel_id}/messages/{name}"}]
        operations[f"{r.producer}.send.{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": message_ref,
            "summary": f"{r.producer} publishes {name}, keyed by {r.key_doc}",
        }
        for consumer in r.consumers:
            operations[f"{consumer}.receive.{name}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": message_ref,
                "summary": f"{consumer} consumes {name}",
            }
    schemas["KafkaHeaders"] = header_schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Verity events",
            "version": "1",
            "description": (
                "Events between Verity's services. Generated from contracts/; do not edit."
            ),
        },
        "defaultContentType": headers.JSON,
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = DOCUMENT_PATH.read_text() if DOCUMENT_PATH.exists() else ""
        if current != text:
            print(f"{DOCUMENT_PATH} is stale: run `python -m contracts.asyncapi_doc`")
            return 1
        return 0
    DOCUMENT_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT_PATH.write_text(text)
    print(f"wrote {DOCUMENT_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
