"""The AsyncAPI document (contracts/asyncapi_doc.py): current, lint-clean, and true.

"True" means: every example validates against its message's schemas; the consumer groups are
the ones the services really subscribe with; the topic sizes are the KafkaTopic resources'
(deploy/k8s/generate.py); the servers are deploy/local/kafka.sh's and the Strimzi cluster's.

Spectral (npm `@stoplight/spectral-cli`, pinned in tests/tools/, rules in
tests/tools/.spectral-asyncapi.yaml) must find nothing, warnings included. Where it is not
installed (`npm ci --prefix tests/tools`) that test skips, except under CI, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from contracts import asyncapi_doc as doc
from contracts import asyncapi_examples as examples
from contracts import events as ev
from contracts import headers, public, schemas, topics
from services.common.consumer import make_broker
from services.common.db import Pool
from services.common.outbox import Message
from services.common.runtime import Runtime
from services.common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tests" / "tools"
SPECTRAL = TOOLS / "node_modules" / ".bin" / "spectral"
RULESET = TOOLS / ".spectral-asyncapi.yaml"
K8S = ROOT / "deploy" / "k8s"
Json = dict[str, Any]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"verity_deploy_{name}", K8S / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load("generate")


@pytest.fixture(scope="module")
def document() -> Json:
    built: Json = doc.build()
    return built


# --- the committed document and --check ------------------------------------------------------


def test_the_committed_document_is_current() -> None:
    committed = doc.DOCUMENT_PATH.read_text()
    assert committed == doc.render(), "run `python -m contracts.asyncapi_doc`"
    assert doc.main(["--check"]) == 0
    parsed = json.loads(committed)
    assert parsed["asyncapi"] == "3.0.0"
    assert parsed["channels"]["batches-v1"]["address"] == topics.BATCHES
    assert "wallet.receive.BatchRequested" in parsed["operations"]


def test_check_fails_on_a_stale_or_missing_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "asyncapi" / "verity.asyncapi.json"
    monkeypatch.setattr(doc, "DOCUMENT_PATH", path)
    assert doc.main(["--check"]) == 1  # missing
    assert doc.main([]) == 0  # writes it
    assert path.read_text() == doc.render()
    assert doc.main(["--check"]) == 0
    stale = json.loads(path.read_text())
    del stale["channels"]["dlq-wallet-v1"]
    path.write_text(json.dumps(stale, indent=2) + "\n")
    assert doc.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().out


# --- Spectral ---------------------------------------------------------------------------------


def test_spectral_finds_no_error_and_no_warning() -> None:
    if not SPECTRAL.exists():
        message = f"Spectral is not installed ({SPECTRAL}): `npm ci --prefix tests/tools`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    found = subprocess.run(
        [str(SPECTRAL), "lint", "--ruleset", str(RULESET), str(doc.DOCUMENT_PATH), "-f", "json"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    try:
        results = json.loads(found.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"spectral gave no JSON (exit {found.returncode}): {found.stderr}")
    severe = [r for r in results if r["severity"] in (0, 1)]  # 0 error, 1 warning
    assert severe == [], json.dumps(severe, indent=1)


# --- examples validate against their schemas --------------------------------------------------


def _validators(document: Json, pointer: str) -> Iterator[Draft7Validator | Draft202012Validator]:
    """The schema at `pointer` in the document, for AsyncAPI's dialect (draft 7) and for the
    public schemas' one (2020-12); `#/components/schemas/...` refs resolve in the document."""
    for cls, spec in ((Draft7Validator, DRAFT7), (Draft202012Validator, DRAFT202012)):
        registry: Registry[Any] = Registry().with_resource(
            "urn:asyncapi", Resource.from_contents(document, default_specification=spec)
        )
        schema = {"$ref": f"urn:asyncapi#{pointer}"}
        yield cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def test_every_message_has_examples_that_validate(document: Json) -> None:
    messages = document["components"]["messages"]
    assert len(messages) == len(topics.ROUTES) + 1 + len(public.PUBLIC_EVENTS)
    for name, message in messages.items():
        assert message["examples"], f"{name} has no example"
        for i, example in enumerate(message["examples"]):
            for part in ("payload", "headers"):
                where = f"/components/messages/{name}/{part}"
                for validator in _validators(document, where):
                    errors = [e.message for e in validator.iter_errors(example[part])]
                    assert not errors, f"{name} example {i} {part}: {errors}"


def test_a_broken_example_is_caught(document: Json) -> None:
    """The validation above is not vacuous: refs resolve, constraints apply."""
    example = document["components"]["messages"]["PublicDetectCompleted"]["examples"][0]
    for part, broken in (
        ("payload", example["payload"] | {"uuid": "not-an-id"}),
        ("payload", {k: v for k, v in example["payload"].items() if k != "status"}),
        ("headers", example["headers"] | {"ce_type": public.BATCH_FINISHED.type}),
        ("headers", {k: v for k, v in example["headers"].items() if k != "ce_id"}),
    ):
        where = f"/components/messages/PublicDetectCompleted/{part}"
        for validator in _validators(document, where):
            assert not validator.is_valid(broken), (part, broken)


def test_internal_examples_are_what_the_outbox_sends() -> None:
    for event_type, event in examples.internal().items():
        assert type(event) is event_type
        assert ev.decode_event(ev.encode_event(event)) == event
        sent = Message.of_event(event)
        assert doc.event_headers(event) == {**sent.headers, headers.TRACEPARENT: doc.TRACEPARENT}
    assert set(examples.internal()) == set(ev.EVENT_TYPES) == set(topics.ROUTES)


def test_public_examples_follow_intake_and_the_public_schemas(document: Json) -> None:
    from services.intake.api import public_events

    messages = document["components"]["messages"]
    components = document["components"]["schemas"]
    generated = schemas.build()  # what contracts/schemas/public holds (its own test checks that)
    for kind in public.PUBLIC_EVENTS:
        message = messages[doc.public_message_name(kind)]
        (example,) = message["examples"]
        assert example["headers"]["ce_type"] == kind.type
        schema_url = example["headers"]["ce_dataschema"]
        assert schema_url.endswith(f"{public_events.SCHEMAS_PATH}/{kind.schema_file}")
        kind.model.checked(example["payload"])  # strictly, as intake checks what it publishes
        # the payload schema is the public JSON Schema, refs aside
        text = json.dumps(generated[kind.schema_file])
        expected = json.loads(text.replace('"#/$defs/', '"#/components/schemas/'))
        defs = expected.pop("$defs", {})
        for key in ("$schema", "$id"):
            expected.pop(key)
        assert components[kind.model.__name__] == expected, kind.schema_file
        for name, schema in defs.items():
            assert components[name] == schema, f"{kind.schema_file} $defs/{name}"


# --- consumer groups: the services' own subscriptions -----------------------------------------


def _runtimes(monkeypatch: pytest.MonkeyPatch) -> list[Runtime]:
    from services.detector.app import build_runtime as detector
    from services.detector.settings import DetectorSettings
    from services.intake import app as intake
    from services.intake.settings import IntakeSettings
    from services.notifier.app import build_runtime as notifier
    from services.notifier.settings import NotifierSettings
    from services.wallet.app import build_runtime as wallet
    from services.wallet.settings import WalletSettings

    built: list[Runtime] = []

    class Recorded(Runtime):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(intake, "Runtime", Recorded)
    intake.build_app(IntakeSettings())
    return [
        *built,
        wallet(WalletSettings()),
        detector(DetectorSettings()),
        notifier(NotifierSettings()),
    ]


def subscriptions(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, tuple[str, ...]]]:
    """service -> {group: topics}, from what each service's `wire` registers on a broker."""
    from faststream.kafka.subscriber.usecase import LogicSubscriber

    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for rt in _runtimes(monkeypatch):
        rt._broker = make_broker("127.0.0.1:1", client_id=rt.service)  # never connected
        rt._pool = cast(Pool, object())  # the handlers are only registered, never run
        rt.wire(rt)
        groups: dict[str, tuple[str, ...]] = {}
        for sub in rt.broker.subscribers:
            assert isinstance(sub, LogicSubscriber)
            assert sub.group_id is not None
            groups[sub.group_id] = groups.get(sub.group_id, ()) + tuple(sub.topic_names)
        assert set(groups) == set(rt.consumer_groups), f"{rt.service}: its DLQs are per group"
        found[rt.service] = groups
    return found


def _as_sets(table: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, dict[str, set[str]]]:
    return {s: {g: set(t) for g, t in groups.items()} for s, groups in table.items()}


def test_the_group_table_is_what_the_services_subscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _as_sets(subscriptions(monkeypatch)) == _as_sets(topics.GROUPS)
    assert doc.PUBLIC_PRODUCER == generate.PUBLIC_PRODUCER
    for service, groups in topics.GROUPS.items():  # what ROUTES says each one reads
        reads = {t for ts in groups.values() for t in ts}
        assert reads == {r.topic for r in topics.ROUTES.values() if service in r.consumers}


def test_receive_operations_name_their_group_and_each_group_its_dead_letters(
    document: Json,
) -> None:
    channels, operations = document["channels"], document["operations"]
    for event_type, r in topics.ROUTES.items():
        for consumer in r.consumers:
            op = operations[f"{consumer}.receive.{event_type.__name__}"]
            kafka = op["bindings"]["kafka"]
            group = kafka["groupId"]["enum"][0]
            assert r.topic in topics.GROUPS[consumer][group]
            assert kafka["clientId"]["enum"] == [consumer]  # make_broker(client_id=service)
    for service, groups in topics.GROUPS.items():
        for group in groups:
            topic = topics.dead_letter_topic(group)
            channel_id = topic.removeprefix("verity.").replace(".", "-")
            assert channels[channel_id]["address"] == topic
            assert list(channels[channel_id]["messages"]) == ["DeadLetter"]
            send = operations[f"{service}.send.DeadLetter.{group}"]
            assert send["action"] == "send"
            assert send["channel"] == {"$ref": f"#/channels/{channel_id}"}


def test_dead_letter_headers_are_what_the_consumer_writes(document: Json) -> None:
    source = (ROOT / "services" / "common" / "consumer.py").read_text()
    assert set(re.findall(r'dead_letter\(msg, "([a-z-]+)"', source)) == set(doc.DLQ_REASONS)
    assert f"error[:{doc.DLQ_ERROR_MAX}]" in source
    dlq = {v for k, v in vars(headers).items() if k.startswith("DLQ_")}
    schema = document["components"]["schemas"]["DeadLetterHeaders"]
    assert set(schema["required"]) == dlq
    for name in dlq:
        assert f"h.{_constant(name)}:" in source, f"consumer.py does not write {name}"


def _constant(header: str) -> str:
    (name,) = [k for k, v in vars(headers).items() if v == header and k.startswith("DLQ_")]
    return name


# --- topic sizes: the KafkaTopic resources ----------------------------------------------------


def test_channel_bindings_are_the_kafka_topics_of_deploy_k8s(document: Json) -> None:
    assert generate.render()[generate.TOPICS_YAML] == generate.TOPICS_YAML.read_text(), (
        "deploy/k8s/base/kafka/topics.yaml is stale: run deploy/k8s/generate.py"
    )
    assert CommonSettings.model_fields["kafka_partitions"].default == topics.PARTITIONS
    resources = {t["metadata"]["name"]: t["spec"] for t in generate.topics()}
    bound = {
        c["address"]: c["bindings"]["kafka"]
        for c in document["channels"].values()
        if "{" not in c["address"]
    }
    assert set(bound) == set(resources)
    for name, spec in resources.items():
        kafka = bound[name]
        assert kafka["topic"] == name
        assert (kafka["partitions"], kafka["replicas"]) == (spec["partitions"], spec["replicas"])
        config = kafka["topicConfiguration"]
        assert config["min.insync.replicas"] == spec["config"]["min.insync.replicas"], name
        # where a KafkaTopic sets no retention, the broker's default is what the doc states
        retention = spec["config"].get("retention.ms", doc.BROKER_RETENTION_MS)
        assert config["retention.ms"] == retention, name
        assert "cleanup.policy" not in spec["config"], "the doc says Kafka's default: delete"
    # ... and neither the cluster nor a local broker changes Kafka's defaults
    for path in (
        K8S / "base" / "kafka" / "kafka.yaml",
        ROOT / "deploy/local/kafka/server.properties",
    ):
        text = path.read_text()
        assert not re.search(r"log\.(retention|cleanup)", text), path
    assert doc.BROKER_RETENTION_MS == 168 * 3600 * 1000  # Kafka's log.retention.hours


def test_per_team_channels_have_a_team_parameter(document: Json) -> None:
    channels = document["channels"]
    for topic in public.PUBLIC_TOPICS:
        address = public.per_team_topic(topic, "{team}")
        (channel,) = [c for c in channels.values() if c["address"] == address]
        assert channel["parameters"] == {"team": {"$ref": "#/components/parameters/team"}}
        kinds = {doc.public_message_name(k) for k in public.PUBLIC_EVENTS if k.topic == topic}
        assert set(channel["messages"]) == kinds
    assert re.fullmatch(
        r"[0-9a-f]{32}", document["components"]["parameters"]["team"]["examples"][0]
    )


# --- servers: deploy/local and deploy/k8s -----------------------------------------------------


def test_servers_are_the_local_broker_and_the_strimzi_listener(document: Json) -> None:
    servers = document["servers"]
    assert servers["local"]["host"] == CommonSettings.model_fields["kafka_bootstrap"].default
    kafka_sh = (ROOT / "deploy" / "local" / "kafka.sh").read_text()
    assert f"PORT=${{VERITY_KAFKA_PORT:-{doc.LOCAL_PORT}}}" in kafka_sh
    assert "SPORT=$((PORT + 2))" in kafka_sh
    assert "MPORT=$((PORT + 3))" in kafka_sh
    secure = (ROOT / "deploy" / "local" / "kafka" / "secure.properties").read_text()
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in secure
    assert "listener.name.ssl.ssl.client.auth=required" in secure

    kafka_yaml = (K8S / "base" / "kafka" / "kafka.yaml").read_text()
    assert re.search(rf"kind: Kafka\nmetadata:\n  name: {doc.KAFKA_CLUSTER}\n", kafka_yaml)
    assert doc.KAFKA_CLUSTER == generate.KAFKA_CLUSTER
    listener = re.search(
        r"- name: tls\n\s+port: (\d+)\n\s+type: internal\n\s+tls: true\n"
        r"\s+authentication:\n\s+type: scram-sha-512\n",
        kafka_yaml,
    )
    assert listener is not None
    assert int(listener.group(1)) == doc.PRODUCTION_PORT
    prod = (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert f"\nnamespace: {doc.PRODUCTION_NAMESPACE}\n" in prod
    base = (K8S / "base" / "kustomization.yaml").read_text()
    bootstrap = f"{doc.KAFKA_CLUSTER}-kafka-bootstrap:{doc.PRODUCTION_PORT}"
    assert f"VERITY_KAFKA_BOOTSTRAP={bootstrap}" in base
    assert "VERITY_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in base
    assert servers["production"]["host"] == (
        f"{doc.KAFKA_CLUSTER}-kafka-bootstrap.{doc.PRODUCTION_NAMESPACE}.svc:{doc.PRODUCTION_PORT}"
    )
    schemes = document["components"]["securitySchemes"]
    for name, server in servers.items():
        for ref in server.get("security", []):
            assert ref["$ref"].removeprefix("#/components/securitySchemes/") in schemes, name
        assert server["protocol"] == ("kafka" if name == "local" else "kafka-secure")
