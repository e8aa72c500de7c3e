"""Generate the AsyncAPI 3 document for Verity's topics from the contracts themselves.

    python -m contracts.asyncapi_doc           # rewrite contracts/asyncapi/verity.asyncapi.json
    python -m contracts.asyncapi_doc --check   # exit 1 when the committed document is stale

The document is derived from the contracts, so it cannot drift from the code without the check
(run by the test suite) failing:

- internal events: `contracts.topics.ROUTES` (topic, key, producer, consumers) and the pydantic
  models of `contracts.events`;
- public events: `contracts.public.PUBLIC_EVENTS`, their data models (with contracts/schemas.py's
  generator, so the schemas of contracts/schemas/public) and `cloudevent_headers`, on the shared
  topics and on the per-team ones (`per_team_topic`: one channel with a `{team}` parameter);
- dead letters: one topic per consumer group (`dead_letter_topic`), headers from
  `contracts.headers`;
- consumer groups, partitions, replicas and retentions: `contracts.topics` (`GROUPS`, ...), which
  deploy/k8s/generate.py writes the KafkaTopics and KafkaUsers from;
- examples: model instances with fixed ids and times (contracts/asyncapi_examples.py).

What contracts/ cannot know (it may not import services/ or deploy/) is stated once below with
its source: the servers, the dead-letter reasons, Kafka's defaults. tests/unit/test_asyncapi.py
checks those against their sources, checks the groups against what the services subscribe,
validates every example against its schemas and lints the document with Spectral.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts import asyncapi_examples as examples
from contracts import events as ev
from contracts import headers, public
from contracts.events import EVENT_TYPES
from contracts.schemas import PublicSchemaGenerator
from contracts.topics import (
    DETECT_REQUESTS,
    DLQ_RETENTION_MS,
    GROUPS,
    MIN_INSYNC_REPLICAS,
    PARTITIONS,
    PRODUCTION_REPLICAS,
    PUBLIC_RETENTION_MS,
    ROUTES,
    Route,
    dead_letter_topic,
    group_of,
    route,
)

DOCUMENT_PATH = Path(__file__).parent / "asyncapi" / "verity.asyncapi.json"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"

# --- what contracts/ does not hold: each value once, with its source -------------------------

# The consumer groups (`GROUPS`), partitions, replicas and retentions come from contracts.topics,
# which deploy/k8s/generate.py writes the KafkaTopics and KafkaUsers from too.
PUBLIC_PRODUCER = "intake"  # deploy/k8s/generate.py PUBLIC_PRODUCER; services/intake/app.py
DAY_MS = 24 * 3600 * 1000
# Not set on the internal topics, nor on the Kafka resource: Kafka's defaults apply
# (log.retention.hours=168, log.cleanup.policy=delete).
BROKER_RETENTION_MS = 7 * DAY_MS
CLEANUP_POLICY = ["delete"]

# Brokers. Local: deploy/local/kafka.sh (what `./dev up` starts) listens on VERITY_KAFKA_PORT,
# default 19092 (= services/common/settings.py kafka_bootstrap); VERITY_KAFKA_SECURE=1 adds
# SASL_SSL with SCRAM-SHA-512 on port + 2 and mutual TLS on port + 3. Production: the `tls`
# listener (9093, TLS, scram-sha-512) of the Strimzi Kafka `verity` (deploy/k8s/base/kafka/
# kafka.yaml), whose bootstrap Service is `<cluster>-kafka-bootstrap`, in overlays/prod's
# namespace `verity` (the services, in that namespace, use `verity-kafka-bootstrap:9093`).
LOCAL_PORT = 19092
LOCAL_HOST = f"127.0.0.1:{LOCAL_PORT}"
LOCAL_SCRAM_HOST = f"127.0.0.1:{LOCAL_PORT + 2}"
LOCAL_MTLS_HOST = f"127.0.0.1:{LOCAL_PORT + 3}"
KAFKA_CLUSTER = "verity"
PRODUCTION_NAMESPACE = "verity"
PRODUCTION_PORT = 9093
PRODUCTION_HOST = f"{KAFKA_CLUSTER}-kafka-bootstrap.{PRODUCTION_NAMESPACE}.svc:{PRODUCTION_PORT}"

# Why services/common/consumer.py dead-letters a message (verity-dlq-reason).
DLQ_REASONS = ("undecodable", "handler-failed")
DLQ_ERROR_MAX = 2000  # consumer.py keeps the first 2000 characters of the error

TAGS = {
    "dead-letter": "Messages a consumer group gave up on, kept for a human to look at.",
    "internal": "Between Verity's own services; not a contract, may change with any release.",
    "public": "For other teams' consumers: versioned, schema-checked CloudEvents (docs/events.md).",
}
TEAM_PARAMETER = "team"


def _channel_id(topic: str) -> str:
    return topic.removeprefix("verity.").replace(".", "-")


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _tag(name: str) -> list[dict[str, str]]:
    return [{"name": name, "description": TAGS[name]}]


def _one_of(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


# --- servers --------------------------------------------------------------------------------


def servers() -> dict[str, Any]:
    binding = {"kafka": {"bindingVersion": KAFKA_BINDING}}

    def server(host: str, protocol: str, description: str, *security: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"host": host, "protocol": protocol, "description": description}
        if security:
            entry["security"] = [_ref("components", "securitySchemes", s) for s in security]
        return entry | {"bindings": binding}

    return {
        "local": server(
            LOCAL_HOST,
            "kafka",
            "A developer's broker (`./dev up`, deploy/local/kafka.sh): PLAINTEXT on loopback, "
            "port VERITY_KAFKA_PORT (default 19092). One replica per topic; services create "
            "missing topics at start-up.",
        ),
        "local-scram": server(
            LOCAL_SCRAM_HOST,
            "kafka-secure",
            "The same broker with VERITY_KAFKA_SECURE=1: SASL_SSL on port + 2, a local CA "
            "(VERITY_KAFKA_SECURE_CA_FILE) and SCRAM-SHA-512 user `verity`.",
            "scramSha512",
        ),
        "local-mtls": server(
            LOCAL_MTLS_HOST,
            "kafka-secure",
            "The same broker with VERITY_KAFKA_SECURE=1: SSL on port + 3, a client certificate "
            "signed by the local CA required (VERITY_KAFKA_MTLS_CERT_FILE, _KEY_FILE).",
            "mutualTls",
        ),
        "production": server(
            PRODUCTION_HOST,
            "kafka-secure",
            "The Strimzi cluster `verity` (deploy/k8s, overlays/prod): its `tls` listener, "
            "TLS with the cluster CA (Secret verity-cluster-ca-cert) and one SCRAM-SHA-512 "
            "KafkaUser per service, ACLs enforced. From inside the namespace: "
            "verity-kafka-bootstrap:9093.",
            "scramSha512",
        ),
    }


def security_schemes() -> dict[str, Any]:
    return {
        "scramSha512": {
            "type": "scramSha512",
            "description": "SASL SCRAM-SHA-512 over TLS (VERITY_KAFKA_SECURITY_PROTOCOL=SASL_SSL, "
            "VERITY_KAFKA_USERNAME, VERITY_KAFKA_PASSWORD, VERITY_KAFKA_CA_FILE). On a cluster "
            "each service has its KafkaUser (deploy/k8s/base/kafka/users.yaml).",
        },
        "mutualTls": {
            "type": "X509",
            "description": "Mutual TLS: a client certificate (VERITY_KAFKA_SECURITY_PROTOCOL=SSL, "
            "VERITY_KAFKA_CERT_FILE, VERITY_KAFKA_KEY_FILE, VERITY_KAFKA_CA_FILE).",
        },
    }


# --- channel bindings -----------------------------------------------------------------------


def channel_bindings(
    topic: str | None, *, retention_ms: int, replicas: int | None = PRODUCTION_REPLICAS
) -> dict[str, Any]:
    """Kafka binding of a topic; `topic` None for an address with a parameter."""
    config: dict[str, Any] = {"cleanup.policy": CLEANUP_POLICY, "retention.ms": retention_ms}
    if replicas is not None:
        config["min.insync.replicas"] = MIN_INSYNC_REPLICAS
    binding: dict[str, Any] = {} if topic is None else {"topic": topic}
    binding["partitions"] = PARTITIONS
    if replicas is not None:
        binding["replicas"] = replicas
    binding |= {"topicConfiguration": config, "bindingVersion": KAFKA_BINDING}
    return {"kafka": binding}


def _key(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _receive_bindings(group: dict[str, Any], client: dict[str, Any] | None) -> dict[str, Any]:
    binding = {"groupId": group} | ({} if client is None else {"clientId": client})
    return {"kafka": binding | {"bindingVersion": KAFKA_BINDING}}


# --- examples -------------------------------------------------------------------------------

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def public_items() -> dict[str, dict[str, Any]]:
    """An item per public event type (contracts/asyncapi_examples.py), held to its model as
    the producer holds it: strictly."""
    items = {
        public.DETECT_COMPLETED.type: examples.detection(),
        public.DETECT_FAILED.type: examples.failed_detection(),
        public.BATCH_FINISHED.type: examples.batch(),
    }
    kinds = {kind.type: kind for kind in public.PUBLIC_EVENTS}
    for name, item in items.items():
        kinds[name].model.checked(item)
    return items


def event_headers(event: ev.Event) -> dict[str, str]:
    """The headers the outbox relay sends an internal event with (services/common/outbox.py
    `Message.of_event`, plus the trace context of the request that caused it)."""
    return {
        headers.EVENT_ID: event.event_id,
        headers.EVENT_TYPE: event.event_type,
        headers.SCHEMA_VERSION: str(event.schema_version),
        headers.CONTENT_TYPE: headers.JSON,
        headers.TRACEPARENT: TRACEPARENT,
    }


def public_headers(kind: public.PublicEvent, subject: str) -> dict[str, str]:
    """The CloudEvents headers of an example, and the trace context the relay adds."""
    return examples.cloudevent_headers(kind, subject) | {headers.TRACEPARENT: TRACEPARENT}


def _example(name: str, summary: str, head: Mapping[str, str], payload: Any) -> dict[str, Any]:
    return {"name": name, "summary": summary, "headers": dict(head), "payload": payload}


# --- header schemas -------------------------------------------------------------------------

_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_TRACE = {
    headers.TRACEPARENT: {
        "type": "string",
        "description": "W3C trace context of the request that caused the message",
    },
    headers.TRACESTATE: {"type": "string", "description": "W3C trace state"},
}


def kafka_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The headers of every internal event (UTF-8 strings).",
        "properties": {
            headers.EVENT_ID: _ID | {"description": "the event's event_id"},
            headers.EVENT_TYPE: {"type": "string", "description": "the event's event_type"},
            headers.SCHEMA_VERSION: {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "the event's schema_version",
            },
            headers.CONTENT_TYPE: {"type": "string", "const": headers.JSON},
            **_TRACE,
        },
        "required": [headers.EVENT_ID, headers.EVENT_TYPE],
    }


_CE_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "ce_specversion": {"type": "string", "const": public.SPEC_VERSION},
    "ce_id": _ID | {"description": "Stable across redeliveries: dedupe by (ce_source, ce_id)"},
    "ce_source": {
        "type": "string",
        "format": "uri",
        "description": "<VERITY_PUBLIC_URL>/api/v2/detect or .../detect/batch; "
        "ce_source/ce_subject is the item's URL",
    },
    "ce_type": {"type": "string", "enum": [k.type for k in public.PUBLIC_EVENTS]},
    "ce_subject": _ID | {"description": "The detect's or batch's uuid, also the Kafka key"},
    "ce_time": {
        "type": "string",
        "format": "date-time",
        "description": "When the detect or batch became terminal (RFC 3339, UTC)",
    },
    "ce_dataschema": {
        "type": "string",
        "format": "uri",
        "description": "<VERITY_PUBLIC_URL>/events/schemas/<schema file>: the committed JSON "
        "Schema of the data (contracts/schemas/public)",
    },
    f"ce_{public.TEAM_EXTENSION}": _ID
    | {"description": "CloudEvents extension: the team the item belongs to"},
    headers.CONTENT_TYPE: {"type": "string", "const": public.JSON},
}


def cloudevents_headers_schema() -> dict[str, Any]:
    """CloudEvents 1.0 in Kafka binary mode: exactly the attributes `cloudevent_headers` sets."""
    some = examples.cloudevent_headers(public.PUBLIC_EVENTS[0], examples.DETECT)
    unknown = set(some) - set(_CE_ATTRIBUTES)
    if unknown:
        raise ValueError(f"cloudevent_headers sets {sorted(unknown)}: describe them here")
    return {
        "type": "object",
        "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode: the "
        "attributes are `ce_*` headers, the value is the data (UTF-8 strings).",
        "properties": {name: _CE_ATTRIBUTES[name] for name in some} | _TRACE,
        "required": list(some),
    }


def dead_letter_headers_schema() -> dict[str, Any]:
    passthrough = kafka_headers_schema()["properties"]
    return {
        "type": "object",
        "description": "The original message's headers, passed through (internal events carry "
        "the verity-* ones), plus what the consumer that gave up adds.",
        "properties": {
            headers.DLQ_REASON: {
                "type": "string",
                "enum": list(DLQ_REASONS),
                "description": "undecodable: not a known event; handler-failed: the handler "
                "failed on every attempt",
            },
            headers.DLQ_ERROR: {
                "type": "string",
                "maxLength": DLQ_ERROR_MAX,
                "description": "The validation error or the handler's exception (truncated)",
            },
            headers.DLQ_SOURCE_TOPIC: {"type": "string", "description": "Where it was read"},
            headers.DLQ_SOURCE_PARTITION: {"type": "string", "pattern": "^[0-9]+$"},
            headers.DLQ_SOURCE_OFFSET: {"type": "string", "pattern": "^[0-9]+$"},
            headers.DLQ_GROUP: {"type": "string", "description": "The group that gave up"},
            headers.DLQ_ATTEMPTS: {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Handler attempts made (0 when undecodable)",
            },
            **passthrough,
        },
        "required": [
            headers.DLQ_REASON,
            headers.DLQ_ERROR,
            headers.DLQ_SOURCE_TOPIC,
            headers.DLQ_SOURCE_PARTITION,
            headers.DLQ_SOURCE_OFFSET,
            headers.DLQ_GROUP,
            headers.DLQ_ATTEMPTS,
        ],
        "additionalProperties": {"type": "string"},
    }


def _headers_of(base: str, name: str, value: str, **more: dict[str, Any]) -> dict[str, Any]:
    """A message's headers: the shared schema `base`, with its type header `name` pinned to
    `value`, and whatever else the message narrows (`more`, by header name)."""
    return {
        "type": "object",
        "allOf": [_ref("components", "schemas", base)],
        "properties": {name: {"type": "string", "const": value}} | more,
        "required": [name],
    }


# --- the document's parts -------------------------------------------------------------------


class Parts:
    """What build() assembles: channels, operations and messages, each by id."""

    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.parameters: dict[str, Any] = {}

    def channel(self, channel_id: str, address: str, **fields: Any) -> dict[str, Any]:
        entry = {"address": address, "messages": {}} | fields
        channel: dict[str, Any] = self.channels.setdefault(channel_id, entry)
        return channel

    def message_on(self, channel_id: str, name: str) -> list[dict[str, str]]:
        """Put the component message `name` on a channel; the reference operations use."""
        self.channels[channel_id]["messages"][name] = _ref("components", "messages", name)
        return [_ref("channels", channel_id, "messages", name)]

    def operation(self, op_id: str, **fields: Any) -> None:
        if op_id in self.operations:
            raise ValueError(f"two operations {op_id}")
        self.operations[op_id] = fields


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0]


def _description(doc: str | None) -> str:
    return " ".join((doc or "").split())


def internal_parts(parts: Parts) -> None:
    """ROUTES: a channel per topic, a message per event type, its send and receives."""
    for event_type, r in ROUTES.items():
        name = event_type.__name__
        channel_id = _channel_id(r.topic)
        parts.channel(
            channel_id,
            r.topic,
            title=r.topic,
            description="Internal topic (not a contract for other teams; docs/events.md).",
            bindings=channel_bindings(r.topic, retention_ms=BROKER_RETENTION_MS),
        )
        example = examples.internal()[event_type]
        topic, key = route(example)
        assert topic == r.topic
        parts.messages[name] = {
            "name": name,
            "title": name,
            "summary": _first_line(event_type.__doc__),
            "description": _description(event_type.__doc__),
            "contentType": headers.JSON,
            "headers": _headers_of("KafkaHeaders", headers.EVENT_TYPE, name),
            "payload": _ref("components", "schemas", name),
            "bindings": _key(r.key_doc),
            "tags": _tag("internal"),
            "examples": [
                _example(
                    name,
                    f"key {key} ({r.key_doc})",
                    event_headers(example),
                    example.model_dump(mode="json"),
                )
            ],
        }
        _internal_operations(parts, r, name, channel_id)


def _internal_operations(parts: Parts, r: Route, name: str, channel_id: str) -> None:
    messages = parts.message_on(channel_id, name)
    channel = _ref("channels", channel_id)
    parts.operation(
        f"{r.producer}.send.{name}",
        action="send",
        channel=channel,
        messages=messages,
        summary=f"{r.producer} publishes {name}, keyed by {r.key_doc}",
        description=f"Through {r.producer}'s transactional outbox: {name} leaves if and only "
        "if the state change that caused it committed; at least once (consumers dedupe by "
        "event id).",
        tags=_tag("internal"),
    )
    for consumer in r.consumers:
        group = group_of(consumer, r.topic)
        parts.operation(
            f"{consumer}.receive.{name}",
            action="receive",
            channel=channel,
            messages=messages,
            summary=f"{consumer} consumes {name}",
            description=f"Consumer group {group}, at least once: each event is handled once "
            "in a transaction with the group's inbox, retried, then moved to "
            f"{dead_letter_topic(group)}.",
            bindings=_receive_bindings(_one_of(group), _one_of(consumer)),
            tags=_tag("internal"),
        )


def dead_letter_parts(parts: Parts) -> None:
    """A dead-letter topic per consumer group, and the service that writes it."""
    failed = examples.internal()[ev.DetectRequested]
    raw = ev.encode_event(failed).decode()
    dlq = {
        headers.DLQ_SOURCE_TOPIC: DETECT_REQUESTS,
        headers.DLQ_SOURCE_PARTITION: "3",
        headers.DLQ_SOURCE_OFFSET: "1187",
        headers.DLQ_GROUP: group_of("detector", DETECT_REQUESTS),
    }
    parts.messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "A message a consumer group gave up on, as it was read, with why",
        "description": "The original value and key, byte for byte, and the original headers, "
        "plus the verity-dlq-* headers. Nothing reads these topics automatically: replay one "
        "by publishing its value back to verity-dlq-source-topic.",
        "contentType": "application/octet-stream",
        "headers": _ref("components", "schemas", "DeadLetterHeaders"),
        "payload": {
            "type": "string",
            "format": "binary",
            "description": "The original message's value, unchanged: usually an internal "
            "event's JSON (reason handler-failed), or whatever could not be decoded.",
        },
        "bindings": _key("the original message's key, unchanged"),
        "tags": _tag("dead-letter"),
        "examples": [
            _example(
                "handler-failed",
                "The detector failed on both attempts at a DetectRequested",
                event_headers(failed)
                | dlq
                | {
                    headers.DLQ_REASON: "handler-failed",
                    headers.DLQ_ERROR: "AnalysisError('analysis timed out after 600 s')",
                    headers.DLQ_ATTEMPTS: "2",
                },
                raw,
            ),
            _example(
                "undecodable",
                "A value that is not an event Verity knows",
                dlq
                | {
                    headers.DLQ_REASON: "undecodable",
                    headers.DLQ_ERROR: "1 validation error: Invalid JSON: expected value at "
                    "line 1 column 1",
                    headers.DLQ_ATTEMPTS: "0",
                },
                "not json",
            ),
        ],
    }
    for service, groups in GROUPS.items():
        for group, topics in groups.items():
            topic = dead_letter_topic(group)
            channel_id = _channel_id(topic)
            parts.channel(
                channel_id,
                topic,
                title=topic,
                description=f"Dead letters of consumer group {group} ({service}), which reads "
                f"{', '.join(topics)}. Kept {DLQ_RETENTION_MS // DAY_MS} days for a human.",
                bindings=channel_bindings(topic, retention_ms=DLQ_RETENTION_MS),
            )
            parts.operation(
                f"{service}.send.DeadLetter.{group}",
                action="send",
                channel=_ref("channels", channel_id),
                messages=parts.message_on(channel_id, "DeadLetter"),
                summary=f"{service} dead-letters what group {group} gives up on",
                description="After the retries (or at once for an undecodable message), with "
                "the consumer's own producer (client id = service), then the offset moves on.",
                bindings={"kafka": {"clientId": _one_of(service), "bindingVersion": KAFKA_BINDING}},
                tags=_tag("dead-letter"),
            )


def public_message_name(kind: public.PublicEvent) -> str:
    """`dev.verity.detect.completed` -> `PublicDetectCompleted`."""
    words = kind.type.removeprefix("dev.verity.").replace("_", ".").split(".")
    return "Public" + "".join(w.capitalize() for w in words)


def public_parts(parts: Parts) -> None:
    """The public topics, shared and per team: intake sends, other teams' consumers receive."""
    items = public_items()
    per_team = {
        "description": "The team's uuid (32 lowercase hex characters)",
        "examples": [examples.TEAM],
    }
    for topic in public.PUBLIC_TOPICS:
        shared_id = _channel_id(topic)
        team_id = "public-team-" + shared_id.removeprefix("public-")
        parts.channel(
            shared_id,
            topic,
            title=topic,
            description="Public topic of every team (VERITY_PUBLIC_EVENTS=shared, the default):"
            " a contract, see docs/events.md. A KafkaTopic resource (deploy/k8s/base).",
            bindings=channel_bindings(topic, retention_ms=PUBLIC_RETENTION_MS),
        )
        parts.channel(
            team_id,
            public.per_team_topic(topic, "{" + TEAM_PARAMETER + "}"),
            title=public.per_team_topic(topic, "<team>"),
            description="One team's own copy of the public topic (VERITY_PUBLIC_EVENTS="
            "per_team), which a prefixed ACL grants to that team's consumers only. Created by "
            "intake before the team's first event (not a KafkaTopic): partitions from "
            "VERITY_KAFKA_PARTITIONS, replicas from VERITY_KAFKA_REPLICATION_FACTOR, the rest "
            "the broker's defaults.",
            parameters={TEAM_PARAMETER: _ref("components", "parameters", TEAM_PARAMETER)},
            bindings=channel_bindings(None, retention_ms=BROKER_RETENTION_MS, replicas=None),
        )
        on_topic = [k for k in public.PUBLIC_EVENTS if k.topic == topic]
        for channel_id in (shared_id, team_id):
            refs = [ref for k in on_topic for ref in _public_send(parts, k, channel_id, items)]
            which = "one team's" if channel_id == team_id else "every team's"
            parts.operation(
                f"external.receive.{channel_id}",
                action="receive",
                channel=_ref("channels", channel_id),
                messages=refs,
                summary=f"Other teams' consumers read {which} public events on {topic}",
                description="Any consumer outside Verity, in a consumer group of its own that "
                "its KafkaUser's ACL allows (deploy/k8s/examples/public-consumers.yaml). At "
                "least once: dedupe by (ce_source, ce_id); ignore fields and event types you "
                "do not know.",
                bindings=_receive_bindings(
                    {"type": "string", "description": "The consumer's own group"}, None
                ),
                tags=_tag("public"),
            )
    parts.messages |= {
        public_message_name(kind): _public_message(kind, items[kind.type])
        for kind in public.PUBLIC_EVENTS
    }
    parts.parameters[TEAM_PARAMETER] = per_team


def _public_send(
    parts: Parts, kind: public.PublicEvent, channel_id: str, items: Mapping[str, Any]
) -> list[dict[str, str]]:
    name = public_message_name(kind)
    refs = parts.message_on(channel_id, name)
    suffix = ".perTeam" if channel_id.startswith("public-team-") else ""
    parts.operation(
        f"{PUBLIC_PRODUCER}.send.{name}{suffix}",
        action="send",
        channel=_ref("channels", channel_id),
        messages=refs,
        summary=f"{PUBLIC_PRODUCER} publishes {kind.type}, keyed by {kind.key_doc}",
        description=f"{kind.summary}. Queued in the transaction that made the item terminal "
        "(intake's outbox): sent if and only if that committed, at least once, with a ce_id "
        "stable across redeliveries.",
        tags=_tag("public"),
    )
    return refs


def _public_message(kind: public.PublicEvent, item: dict[str, Any]) -> dict[str, Any]:
    name = public_message_name(kind)
    return {
        "name": name,
        "title": kind.type,
        "summary": kind.summary,
        "description": f"CloudEvents type {kind.type}; data: {kind.model.__name__}, JSON "
        f"Schema contracts/schemas/public/{kind.schema_file} "
        f"(urn:verity:schema:{kind.schema_name}:v{kind.major}).",
        "contentType": public.JSON,
        "headers": _headers_of(
            "CloudEventsHeaders",
            "ce_type",
            kind.type,
            ce_dataschema={"type": "string", "pattern": "/" + re.escape(kind.schema_file) + "$"},
        ),
        "payload": _ref("components", "schemas", kind.model.__name__),
        "bindings": _key(kind.key_doc),
        "tags": _tag("public"),
        "examples": [
            _example(
                kind.type.removeprefix("dev.verity."),
                kind.summary,
                public_headers(kind, item["uuid"]),
                item,
            )
        ],
    }


# --- the document ---------------------------------------------------------------------------


def schemas() -> dict[str, Any]:
    """The payloads: internal events as they are validated, public data as it is published
    (contracts/schemas.py's generator, so the same schemas as contracts/schemas/public)."""
    ref = "#/components/schemas/{model}"
    _, internal = models_json_schema([(m, "validation") for m in EVENT_TYPES], ref_template=ref)
    models = sorted({kind.model for kind in public.PUBLIC_EVENTS}, key=lambda m: m.__name__)
    _, published = models_json_schema(
        [(m, "serialization") for m in models],
        ref_template=ref,
        schema_generator=PublicSchemaGenerator,
    )
    found: dict[str, Any] = internal["$defs"]
    for name, schema in published["$defs"].items():
        if found.setdefault(name, schema) != schema:
            raise ValueError(f"an internal and a public schema are both called {name}")
    found["KafkaHeaders"] = kafka_headers_schema()
    found["CloudEventsHeaders"] = cloudevents_headers_schema()
    found["DeadLetterHeaders"] = dead_letter_headers_schema()
    return found


DESCRIPTION = """\
Verity's Kafka topics. Generated from contracts/ by `python -m contracts.asyncapi_doc`; \
do not edit.

- **public** (`verity.public.*`): what other teams may consume. CloudEvents 1.0 in Kafka \
binary mode, one committed JSON Schema per data model and major version, compatible changes \
only (docs/events.md).
- **internal** (`verity.<area>.v1`): events between Verity's own services; not a contract.
- **dead-letter** (`verity.dlq.<group>.v1`): what a consumer group gave up on.

Topic sizes in the bindings are production's (deploy/k8s/base); locally every topic has one \
replica. Receive operations name their consumer group (`groupId`) and client id."""


def build() -> dict[str, Any]:
    parts = Parts()
    internal_parts(parts)
    dead_letter_parts(parts)
    public_parts(parts)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:verity:asyncapi:events",
        "info": {
            "title": "Verity events",
            "version": "1",
            "description": DESCRIPTION,
            "tags": [{"name": n, "description": d} for n, d in sorted(TAGS.items())],
        },
        "servers": servers(),
        "defaultContentType": headers.JSON,
        "channels": dict(sorted(parts.channels.items())),
        "operations": dict(sorted(parts.operations.items())),
        "components": {
            "schemas": dict(sorted(schemas().items())),
            "messages": dict(sorted(parts.messages.items())),
            "parameters": parts.parameters,
            "securitySchemes": security_schemes(),
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
