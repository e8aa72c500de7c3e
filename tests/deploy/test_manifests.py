"""The Kubernetes manifests (deploy/k8s) build and pass the offline validators, and broken ones
do not: kubernetes-validate for core kinds, check-jsonschema against the vendored CRD schemas,
checkov for security settings (deploy/k8s/validate.sh runs all three).

The tools are installed on first use into .run/tools (Go module proxy, PyPI). Where they cannot
be installed these tests skip, except under CI (env `CI` set), where that is a failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from contracts.public import PUBLIC_TOPICS
from contracts.topics import ALL_TOPICS, dead_letter_topic

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VALIDATE = K8S / "validate.sh"
TOOLS_MISSING = 3  # validate.sh's exit status when a tool cannot be installed

pytestmark = pytest.mark.timeout(900)  # a cold start installs kustomize with `go install`


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"verity_deploy_{name}", K8S / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
split = _load("split")


def validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VALIDATE), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def require_tools(stages: str) -> None:
    """Install what `stages` need; skip (fail under CI) if that is impossible here."""
    done = validate("--tools", "--only", stages)
    if done.returncode == TOOLS_MISSING:
        message = f"validation tools unavailable: {done.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert done.returncode == 0, done.stderr


@cache
def built(overlay: str) -> str:
    """`kustomize build` of an overlay, or of deploy/k8s/examples."""
    require_tools("kubernetes")  # kustomize
    tools = Path(os.environ.get("VERITY_TOOLS_DIR", ROOT / ".run" / "tools"))
    done = subprocess.run(
        [str(tools / "bin" / "kustomize"), "build", str(K8S / "overlays" / overlay)]
        if overlay != "examples"
        else [str(tools / "bin" / "kustomize"), "build", str(K8S / "examples")],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def docs(overlay: str, kind: str) -> dict[str, str]:
    """name -> document text of every `kind` in the built overlay."""
    return {d.name: d.text for d in split.documents(built(overlay)) if d.kind == kind}


def field(text: str, *keys: str) -> str | None:
    """The scalar at `keys` in kustomize's block-style output (mappings only, not lists)."""
    lines = text.splitlines()
    start, value = 0, ""
    for depth, key in enumerate(keys):
        indent = " " * (2 * depth)
        pattern = re.compile(rf"^{indent}{re.escape(key)}:(.*)$")
        for i in range(start, len(lines)):
            if i > start and lines[i].strip() and not lines[i].startswith(indent):
                return None  # left the enclosing mapping
            m = pattern.match(lines[i])
            if m:
                value, start = m.group(1).strip(), i + 1
                break
        else:
            return None
    return value.strip("\"'") or None


def copy_tree(tmp_path: Path) -> Path:
    """deploy/k8s's kustomizations in tmp_path (overlays refer to ../../base)."""
    for part in ("base", "components", "overlays", "examples"):
        shutil.copytree(K8S / part, tmp_path / part)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- the manifests as committed ---------------------------------------------------------------


def test_overlays_pass_every_validator() -> None:
    require_tools("kubernetes,schemas,checkov")
    done = validate("--only", "kubernetes,schemas,checkov")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kubernetes: dev ok" in done.stderr
    assert "kubernetes: prod ok" in done.stderr
    assert "schemas: prod ok" in done.stderr
    assert "schemas: examples ok" in done.stderr  # per-team public events, other teams' users
    assert "checkov: dev prod examples ok" in done.stderr


def test_generated_files_are_current() -> None:
    stale = generate.stale()
    assert not stale, f"run `uv run python deploy/k8s/generate.py`: {stale} differ"


def test_group_table_matches_the_services() -> None:
    from services.detector import consumers as detector
    from services.intake import app as intake
    from services.notifier import consumers as notifier
    from services.wallet import consumers as wallet

    groups = generate.GROUPS
    assert tuple(groups["intake"]) == intake.GROUPS
    assert list(groups["wallet"]) == [wallet.GROUP]
    assert groups["wallet"][wallet.GROUP] == wallet.TOPICS
    assert list(groups["notifier"]) == [notifier.GROUP]
    assert list(groups["detector"]) == [
        detector.GROUP,
        detector.VOICEPRINT_GROUP,
        detector.QUESTION_GROUP,
    ]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_topic_and_dead_letter_topic_is_a_kafka_topic(overlay: str) -> None:
    groups = [g for per_service in generate.GROUPS.values() for g in per_service]
    expected = set(ALL_TOPICS) | {dead_letter_topic(g) for g in groups} | set(PUBLIC_TOPICS)
    topics = docs(overlay, "KafkaTopic")
    assert set(topics) == expected
    replicas, insync = ("1", "1") if overlay == "dev" else ("3", "2")
    for name, text in topics.items():
        assert field(text, "spec", "partitions") == "6", name
        assert field(text, "spec", "replicas") == replicas, name
        assert field(text, "spec", "config", "min.insync.replicas") == insync, name


def test_each_service_has_a_user_that_may_do_what_routes_say() -> None:
    users = docs("prod", "KafkaUser")
    assert set(users) == {f"verity-{s}" for s in generate.GROUPS} | {"verity-keda"}
    for service in generate.GROUPS:
        acls = generate.user_acls(service)
        allowed = {(a["resource"].get("name"), op) for a in acls for op in a["operations"]}
        for topic in generate.produced(service):
            assert (topic, "Write") in allowed
        for group, topics in generate.GROUPS[service].items():
            assert (group, "Read") in allowed
            assert (dead_letter_topic(group), "Write") in allowed
            assert all((t, "Read") in allowed for t in topics)
        assert all((t, "Describe") in allowed for t in ALL_TOPICS)  # start-up topic check
        assert not any(op in {"Create", "Delete", "Alter", "All"} for _, op in allowed)
        public_writes = {(t, "Write") for t in PUBLIC_TOPICS}
        assert public_writes <= allowed if service == "intake" else not public_writes & allowed


def test_per_team_public_events_grant_intake_creation_and_a_team_only_its_own_topics() -> None:
    """deploy/k8s/examples: the prod overlay with per-team public events, and other teams'
    users; neither consumer may read an internal topic."""
    config = next(t for n, t in docs("examples", "ConfigMap").items() if "verity-config" in n)
    assert field(config, "data", "VERITY_PUBLIC_EVENTS") == "per_team"
    assert field(config, "data", "VERITY_KAFKA_REPLICATION_FACTOR") == "3"  # min.insync is 2
    users = docs("examples", "KafkaUser")
    assert "name: verity.public.team.\n        patternType: prefix" in users["verity-intake"]
    assert "- Create" in users["verity-intake"]
    team = f"team-{generate.EXAMPLE_TEAM}"
    assert f"name: verity.public.team.{generate.EXAMPLE_TEAM}.\n" in users[team]
    for reader in ("case-management", team):
        assert not any(f"name: {t}\n" in users[reader] for t in ALL_TOPICS), reader
        assert "- Write" not in users[reader]


def test_services_run_against_strimzi_and_cloudnativepg() -> None:
    config = next(t for n, t in docs("prod", "ConfigMap").items() if n.startswith("verity-config"))
    for key, value in {
        "VERITY_KAFKA_MANAGE_TOPICS": "false",
        "VERITY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VERITY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "VERITY_KAFKA_BOOTSTRAP": "verity-kafka-bootstrap:9093",
        "VERITY_BLOB_STORE": "s3",
        "VERITY_HTTP_HOST": "0.0.0.0",
        "VERITY_HTTP_PORT": "8080",
    }.items():
        assert field(config, "data", key) == value, key
    deployments = docs("prod", "Deployment")
    assert set(deployments) == {"intake", "wallet", "detector", "notifier"}
    for name, text in deployments.items():
        assert f"value: verity-{name}\n" in text  # VERITY_KAFKA_USERNAME = its KafkaUser
        assert "name: VERITY_KAFKA_PASSWORD" in text
        assert f"name: verity-{name}\n" in text
        assert "name: VERITY_DATABASE_URL" in text
        assert "name: verity-pg-app" in text
        assert "secretName: verity-cluster-ca-cert" in text
        for probe in ("/livez", "/readyz", "/startupz"):
            assert f"path: {probe}" in text, (name, probe)
        assert "readOnlyRootFilesystem: true" in text
        assert "runAsUser: 10001" in text
        assert "automountServiceAccountToken: false" in text
    intake = deployments["intake"]
    assert "name: VERITY_URL_SIGNING_KEY" in intake
    assert field(intake, "spec", "replicas") is None  # the HPA owns it in prod
    grace = field(
        deployments["detector"], "spec", "template", "spec", "terminationGracePeriodSeconds"
    )
    assert grace is not None
    assert int(grace) > 240


def test_prod_scales_and_keeps_pods_through_disruptions() -> None:
    (hpa,) = docs("prod", "HorizontalPodAutoscaler").values()
    min_replicas = field(hpa, "spec", "minReplicas")
    assert min_replicas is not None
    assert int(min_replicas) >= 2
    for name, pdb in docs("prod", "PodDisruptionBudget").items():
        assert field(pdb, "spec", "minAvailable") == "1", name
        assert field(pdb, "spec", "maxUnavailable") is None, name
    scaled = docs("prod", "ScaledObject")["detector"]
    assert field(scaled, "spec", "maxReplicaCount") == str(generate.PARTITIONS)
    assert "consumerGroup: detector" in scaled
    assert "topic: verity.detect-requests.v1" in scaled
    assert set(docs("dev", "Deployment")) == set(docs("prod", "Deployment"))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_keda_reaches_the_brokers_from_its_own_namespace(overlay: str) -> None:
    scaled = docs(overlay, "ScaledObject")["detector"]
    namespace = field(scaled, "metadata", "namespace")
    assert namespace
    assert f"bootstrapServers: verity-kafka-bootstrap.{namespace}.svc:9093\n" in scaled


def test_vendored_schemas_match_their_recorded_hashes() -> None:
    sources = (K8S / "schemas" / "SOURCES.md").read_text()
    rows = re.findall(r"^\| `([^`]+\.json)` \|.*\| `([0-9a-f]{64})` \|$", sources, re.MULTILINE)
    assert len(rows) == len(split.known_custom_resources())
    for path, sha256 in rows:
        assert hashlib.sha256((K8S / "schemas" / path).read_bytes()).hexdigest() == sha256, path


# --- broken manifests must fail -------------------------------------------------------------


def test_an_unknown_field_in_a_kafka_topic_fails_the_schema_check(tmp_path: Path) -> None:
    require_tools("schemas")
    tree = copy_tree(tmp_path)
    edit(tree / "base/kafka/topics.yaml", "spec:\n  partitions: 6\n", "spec:\n  partitons: 6\n")
    done = validate("--only", "schemas", tree / "overlays" / "dev")
    assert done.returncode == 1, done.stderr
    assert "'partitons' was unexpected" in done.stdout + done.stderr


def test_an_unknown_custom_resource_kind_fails(tmp_path: Path) -> None:
    require_tools("schemas")
    tree = copy_tree(tmp_path)
    edit(tree / "base/postgres.yaml", "kind: Cluster\n", "kind: Pooler\n")
    done = validate("--only", "schemas", tree / "overlays" / "prod")  # dev patches the Cluster
    assert done.returncode == 1
    assert "no schema for postgresql.cnpg.io/v1 Pooler" in done.stderr


def test_a_string_replica_count_fails_kubernetes_validation(tmp_path: Path) -> None:
    require_tools("kubernetes")
    tree = copy_tree(tmp_path)
    edit(tree / "base/wallet.yaml", "  replicas: 1\n", '  replicas: "two"\n')
    done = validate("--only", "kubernetes", tree / "overlays" / "dev")
    assert done.returncode == 1, done.stderr
    assert "deployment/wallet" in done.stdout + done.stderr
    assert "'two' is not of type 'integer'" in done.stdout + done.stderr


def test_a_writable_root_filesystem_fails_checkov(tmp_path: Path) -> None:
    require_tools("checkov")
    tree = copy_tree(tmp_path)
    edit(tree / "base/notifier.yaml", "            readOnlyRootFilesystem: true\n", "")
    done = validate("--only", "checkov", tree / "overlays" / "dev")
    assert done.returncode == 1, done.stderr
    assert "CKV_K8S_22" in done.stderr
    assert "notifier" in done.stderr
