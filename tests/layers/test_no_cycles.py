"""Layers: the engine crate's modules form no cycle; the Python package's modules form none
either (but the one named in ``_KNOWN_CYCLE``); the asyncio and threads drivers do not import
each other (both sit on ``plait.footprint``, and ``plait.world`` under them).

Lazy imports (inside functions) and imports for type checking count: a dependency that only
appears at run time, or only to the type checker, is still one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import plait

PACKAGE_DIR = Path(plait.__file__).parent
CRATE_SRC = Path(__file__).resolve().parents[2] / "crates" / "plait-core" / "src"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    if not is_pkg:
                        base = base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets.append(module)
                targets += [f"{module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            for target in targets:
                # the deepest module of plait this import names
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    found.add(target)
        graph[name] = found
    return graph


def _rust_graph() -> dict[str, set[str]]:
    files = {
        ("lib" if p.stem == "lib" else p.stem if p.stem != "mod" else p.parent.name): p
        for p in CRATE_SRC.rglob("*.rs")
    }
    top = {name for name in files if name != "lib"}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        owner = name if path.parent == CRATE_SRC or path.stem == "mod" else path.parent.name
        uses = set(re.findall(r"crate::(\w+)", path.read_text())) & top
        graph.setdefault(owner, set()).update(uses - {owner})
    graph.pop("lib", None)
    for deps in graph.values():
        deps.discard("lib")
    return graph


def _cycle(graph: dict[str, set[str]]) -> str | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> str | None:
        if node in path:
            return " -> ".join([*path[path.index(node):], node])
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            found = visit(dep, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return None


# The one cycle left: the runner hands a phase to ``plait.workers`` when an exploration is split
# across processes, and the workers run their share through the runner's explorer.
_KNOWN_CYCLE = {("plait.runner", "plait.workers"), ("plait.workers", "plait.runner")}


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_python_package_has_no_import_cycle():
    graph = _python_graph()
    assert {"plait.runner", "plait.report", "plait.timeline", "plait.footprint"} <= set(graph)
    assert "plait.footprint" in graph["plait.threads.scheduler"], \
        "the parser found no imports: the test would prove nothing"
    graph = {m: {d for d in deps if (m, d) not in _KNOWN_CYCLE} for m, deps in graph.items()}
    assert _sccs(graph) == [], f"import cycles in the plait package: {_sccs(graph)}"


def test_the_cycle_check_finds_a_cycle():
    assert _sccs({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _sccs({"a": {"b"}, "b": set()}) == []


def test_asyncio_and_threads_drivers_do_not_import_each_other():
    graph = _python_graph()
    for a, b in (("plait.aio", "plait.threads"), ("plait.threads", "plait.aio")):
        crossing = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith(a)
                          for d in deps if d.startswith(b))
        assert not crossing, f"{a} imports {b}: {crossing}"


def test_the_engine_crate_has_no_module_cycle():
    graph = _rust_graph()
    assert {"config", "error", "token", "explore"} <= set(graph), sorted(graph)
    assert graph["explore"], "the parser found no crate:: uses: the test would prove nothing"
    assert _cycle(graph) is None, f"module cycle in plait-core: {_cycle(graph)}"


# The package's layers, top to bottom (docs/architecture.md draws them). A module imports only
# modules of its own layer or of layers below it; the drivers' layer holds packages that do
# not import one another.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("surface", ("plait", "plait.__main__", "plait.api", "plait.cli", "plait.pytest_plugin")),
    ("runner", ("plait.runner", "plait.workers")),
    ("reports", ("plait.report", "plait.html_report", "plait.races", "plait.timeline")),
    ("drivers", ("plait.aio", "plait.threads", "plait.sql", "plait.cooperative",
                 "plait.concurrent")),
    ("world", ("plait.world",)),
    ("vocabulary", ("plait.footprint", "plait.result", "plait.settings", "plait.errors",
                    "plait._paths", "plait.progress", "plait.unawaited")),
]


def _layer_of(module: str) -> tuple[int, str]:
    best: tuple[int, str] | None = None
    for number, (_name, members) in enumerate(LAYERS):
        for member in members:
            if (module == member or module.startswith(member + ".")) and \
                    (best is None or len(member) > len(best[1])):
                best = (number, member)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the architecture page"
    return best


def test_every_import_goes_down_the_layers():
    graph = _python_graph()
    wrong = []
    for module, deps in sorted(graph.items()):
        layer, home = _layer_of(module)
        for dep in sorted(deps):
            dep_layer, dep_home = _layer_of(dep)
            if dep_layer < layer:
                wrong.append(f"{module} ({LAYERS[layer][0]}) imports {dep} "
                             f"({LAYERS[dep_layer][0]}, a layer above)")
            elif dep_layer == layer and LAYERS[layer][0] == "drivers" and dep_home != home:
                wrong.append(f"{module} imports {dep}: drivers do not import one another")
    assert not wrong, "\n".join(wrong)
