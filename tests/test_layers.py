"""The package's imports go down the layers, form no cycle, and no basename is used twice.

Read from the source with `ast`, so a new module is checked the day it is added. The layers,
from the top (see ARCHITECTURE.md):
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gateway"

# Higher imports lower; equal ranks may not import each other (they are siblings).
LAYERS: dict[str, int] = {
    "cli": 9,
    "sandbox": 8,  # a provider stand-in app of its own: only the CLI starts it
    "web": 7,
    "ingress": 6,
    "processing": 6,
    "health": 6,  # probes through outbound, counts from store, tenants as sync schedules them
    "functions": 6,
    "sync": 5,
    "outbound": 4,
    "credentials": 3,
    "store": 2,
    "config": 2,
    "expr": 1,
    "verify": 1,
    "replies": 1,  # plain-ASGI replies and bounded body reading: ingress and functions
    # leaves
    "errors": 0,
    "diagnostics": -1,
    "durations": -1,
    "ids": -1,
    "jsontext": -1,
    "logs": -1,
    "counters": -1,
    "resources": -1,
    "locales": -1,  # locale codes (Babel): filters, config and messaging read them alike
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from gateway.verify import options` imports the module options; the
                # package counts only for a name defined in its __init__.
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                names = [m for m in submodules if _exists(m)]
                if len(names) < len(submodules):
                    names.append(node.module)
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("gateway.") and _exists(name):
                    found[module].add(name)
    return found


def _exists(module: str) -> bool:
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_top_level_module_and_folder_has_a_layer() -> None:
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    unplaced = sorted(tops - set(LAYERS) - {"__init__", "__main__"})
    assert not unplaced, f"give these a layer in LAYERS and ARCHITECTURE.md: {unplaced}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of `graph` (module -> modules it imports) that does not go down a layer."""
    upward = []
    for module, targets in sorted(graph.items()):
        here = _layer(module)
        for target in sorted(targets):
            there = _layer(target)
            if here is None or there is None or here == there or module.endswith("__main__"):
                continue
            if LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module} -> {target}")
    return upward


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    """Every import cycle of `graph`, as `a -> b -> a`."""
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_imports_go_down_the_layers() -> None:
    upward = upward_imports(_imports())
    assert not upward, "imports that do not go down a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = cycles_in(_imports())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_find_what_they_look_for() -> None:
    graph = {
        "gateway.store.sqlite": {"gateway.web.application"},  # up: store below web
        "gateway.ingress.webhooks": {"gateway.processing.worker"},  # sideways: siblings
        "gateway.config.model": {"gateway.errors"},  # down: fine
        "gateway.expr.a": {"gateway.expr.b"},
        "gateway.expr.b": {"gateway.expr.a"},  # a cycle inside one layer
    }
    assert upward_imports(graph) == [
        "gateway.ingress.webhooks -> gateway.processing.worker",
        "gateway.store.sqlite -> gateway.web.application",
    ]
    assert cycles_in(graph) == ["gateway.expr.a -> gateway.expr.b -> gateway.expr.a"]


def test_basenames_are_unique() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            seen[path.name].append(str(path.relative_to(PACKAGE)))
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert not twice, f"modules named alike: {twice}"


@pytest.mark.parametrize(
    "folder", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
)
def test_no_test_only_code_in_the_package(folder: str) -> None:
    for path in (PACKAGE / folder).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import pytest" not in text, f"{path} is test code: it belongs in tests/"
