"""Our modules and what each imports, read off the source with `ast` (nothing is imported).

Every import counts, including those inside functions: a lazy import is still a dependency.
Used by the layout and dependency-group tests.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "services", "training")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for top in PACKAGES for p in (REPO / top).rglob("*.py")}


def imported(name: str) -> Iterator[str]:
    """Every dotted name module `name` imports (for `from a import b`: `a` and `a.b`)."""
    path = FILES[name]
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


def _ours(target: str) -> str | None:
    """The module of ours that `target` names (a name imported from a module: that module)."""
    while target and target not in FILES:
        target = target.rpartition(".")[0]
    return target or None


@functools.cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the other modules of ours it imports."""
    edges: dict[str, frozenset[str]] = {}
    for name in FILES:
        found = {_ours(t) for t in imported(name)}
        edges[name] = frozenset(t for t in found if t is not None and t != name)
    return edges


def within(prefix: str) -> list[str]:
    return [name for name in FILES if name == prefix or name.startswith(f"{prefix}.")]


def closure(roots: Iterable[str]) -> set[str]:
    """The roots and every module of ours they import, transitively."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(graph()[name])
    return seen


def third_party(modules: Iterable[str]) -> set[str]:
    """The top-level names of the modules outside this repository that `modules` import."""
    import sys

    tops = {
        target.split(".")[0]
        for name in modules
        for target in imported(name)
        if target and _ours(target) is None
    }
    return {t for t in tops if t not in sys.stdlib_module_names and t not in PACKAGES}
