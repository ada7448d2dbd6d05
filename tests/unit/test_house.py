"""The house rules of streams/ and api/, read from the source: imports run one way, rooms stay
small, and what has one owner is touched by that owner only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "api")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports_of(name: str, path: Path) -> set[str]:
    """Every Sluice module `name` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]).rstrip(".")
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    # importing a.b.c runs the packages a and a.b first: their imports count too
    for target in list(targets):
        parts = target.split(".")
        targets.update(".".join(parts[:end]) for end in range(1, len(parts)))
    return {
        target
        for target in targets
        if target in MODULES and target != name and not name.startswith(f"{target}.")
    }


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles() -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                yield from visit(target)
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
                yield sorted(component)

    for node in GRAPH:
        if node not in index:
            yield from visit(node)


def test_no_import_cycles() -> None:
    assert list(cycles()) == []


def test_streams_never_imports_api() -> None:
    upward = {
        name: sorted(t for t in targets if t.split(".")[0] == "api")
        for name, targets in GRAPH.items()
        if name.split(".")[0] == "streams"
    }
    assert {name: found for name, found in upward.items() if found} == {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_small(name: str) -> None:
    source = MODULES[name].read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long_functions = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long_functions == []


@pytest.mark.parametrize(
    ("needle", "owner"),
    [
        ("os.environ", "streams.config"),  # the one reader of the environment
        ("os.getenv", "streams.config"),
        ("_committed_offset", "streams.kafka.consumer"),  # Faust's private offsets
        ("fastavro", "streams.wire.codec"),  # the one Avro module
    ],
)
def test_one_owner_touches(needle: str, owner: str) -> None:
    touching = sorted(name for name, path in MODULES.items() if needle in path.read_text())
    assert touching in ([owner], [])
