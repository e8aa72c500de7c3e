"""The layout's promises, read off the source (docs/architecture.md, "Where things are").

Every import counts, including those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "services", "training")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, name: str) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


FILES = {_module_name(p): p for top in PACKAGES for p in (REPO / top).rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each one imports (a name imported from a module
    counts as that module)."""
    files = FILES
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for target in _imported(path, name):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        graph[name] = found
    return graph


GRAPH = _graph()


def _importers(of: str) -> dict[str, set[str]]:
    """Module -> the modules under `of` it imports, for every module outside `of`."""
    inside = (of, f"{of}.")
    return {
        name: {t for t in targets if t == of or t.startswith(inside[1])}
        for name, targets in GRAPH.items()
        if not (name == of or name.startswith(inside[1]))
    }


def _within(prefix: str) -> list[str]:
    return [name for name in GRAPH if name == prefix or name.startswith(f"{prefix}.")]


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
        for name in _within("services") + _within("contracts")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("service", ["intake", "wallet", "detector", "notifier"])
def test_a_service_imports_no_other_service(service: str) -> None:
    """They share nothing but Kafka topics and contracts/ (services/common is plumbing)."""
    others = {f"services.{s}" for s in ("intake", "wallet", "detector", "notifier")} - {
        f"services.{service}"
    }
    offenders = {
        name: sorted(t for t in GRAPH[name] if t.rsplit(".", t.count(".") - 1)[0] in others)
        for name in _within(f"services.{service}")
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
    for name in _within("services.intake.domain"):
        ours = {t for t in GRAPH[name] if t.startswith("services.intake")}
        assert all(t.startswith("services.intake.domain") for t in ours), (name, ours)
        imported = set(_imported(FILES[name], name))
        assert not {i for i in imported if i.startswith(io_modules)}, name
