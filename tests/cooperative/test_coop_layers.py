"""The cooperative package's modules import one another without a cycle.

Lazy imports (inside functions) count too: a cycle that only closes at run time is still
one (the plugin once imported the engine lazily while the engine imported the plugin).
"""

from __future__ import annotations

import ast
from pathlib import Path

import plait.cooperative

PACKAGE = "plait.cooperative"
HERE = Path(plait.cooperative.__file__).parent


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                for alias in node.names:
                    found.add(alias.name if alias.name in modules else "__init__")
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name.split(".")[2])
    return found & modules


def test_no_import_cycle():
    modules = {p.stem for p in HERE.glob("*.py")}
    graph = {name: _imports(HERE / f"{name}.py", modules) - {name} for name in modules}
    assert graph["_engine"], "the parser found no imports: the test would prove nothing"
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise AssertionError(f"import cycle in {PACKAGE}: {cycle}")
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
