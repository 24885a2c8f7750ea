"""Layers: the engine crate's modules form no cycle, and the asyncio and threads drivers of
the Python package do not import each other (both sit on ``plait.footprint``).

Lazy imports (inside functions) count: a dependency that only appears at run time is still one.
(The Python package as a whole still has a cycle through lazy imports, report -> runner and
timeline -> aio.trace among them; docs/architecture.md lists it. It is not asserted here yet.)
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
