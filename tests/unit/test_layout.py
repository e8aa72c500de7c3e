"""The layout's promises, read off the source (docs/architecture.md, "Where things are")."""

from __future__ import annotations

import pytest

from tests.support.imports import graph, imported, within

GRAPH = graph()


def _importers(of: str) -> dict[str, frozenset[str]]:
    """Module -> the modules of part `of` it imports, for every module outside `of`."""
    part = set(within(of))
    return {name: targets & part for name, targets in GRAPH.items() if name not in part}


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_services_never_import_the_offline_training_work() -> None:
    offenders = {
        name: sorted(t for t in GRAPH[name] if t.startswith("training"))
        for name in within("services") + within("contracts")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("service", ["intake", "wallet", "detector", "notifier"])
def test_a_service_imports_no_other_service(service: str) -> None:
    """They share nothing but Kafka topics and contracts/ (services/common is plumbing)."""
    others = {f"services.{s}" for s in ("intake", "wallet", "detector", "notifier")} - {
        f"services.{service}"
    }
    offenders = {
        name: sorted(t for t in GRAPH[name] if ".".join(t.split(".")[:2]) in others)
        for name in within(f"services.{service}")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# Who may import each part of a service, besides the part itself (dependencies point inward).
INWARD = {
    # detector: edge (app, consumers, worker) -> analysis -> models -> media, errors
    "services.detector.app": ["services.detector.__main__"],
    "services.detector.consumers": ["services.detector.app"],
    "services.detector.worker": ["services.detector.app", "services.detector.consumers"],
    "services.detector.analysis": ["services.detector.consumers"],
    "services.detector.models": ["services.detector.analysis"],
    # intake: app -> api -> saga -> store -> domain; uploads read by api and saga
    "services.intake.app": ["services.intake.__main__"],
    "services.intake.api": ["services.intake.app"],
    "services.intake.saga": ["services.intake.api", "services.intake.app"],
    "services.intake.uploads": [
        "services.intake.api",
        "services.intake.saga",
        "services.intake.app",
    ],
    "services.intake.store": [
        "services.intake.api",
        "services.intake.saga",
        "services.intake.app",
        "services.intake.admin",
        "services.intake.uploads.janitor",  # which staged and secure uploads are still owned
    ],
}


@pytest.mark.parametrize("part", sorted(INWARD))
def test_dependencies_point_inward(part: str) -> None:
    service = ".".join(part.split(".")[:2])
    allowed = INWARD[part]
    offenders = {
        name: sorted(targets)
        for name, targets in _importers(part).items()
        if targets
        and name.startswith(f"{service}.")
        and not any(name == a or name.startswith(f"{a}.") for a in allowed)
    }
    assert offenders == {}


def test_the_intake_domain_is_pure() -> None:
    """decide/evolve over frozen models: nothing of intake's but the domain itself, no I/O."""
    io_modules = ("asyncpg", "aiokafka", "faststream", "litestar", "httpx", "av", "PIL")
    for name in within("services.intake.domain"):
        ours = {t for t in GRAPH[name] if t.startswith("services.intake")}
        assert all(t.startswith("services.intake.domain") for t in ours), (name, ours)
        assert not {i for i in imported(name) if i.startswith(io_modules)}, name
