"""``plait``: explore the explored tests of some files from the command line.

``plait demo examples`` explores every ``@plait.explore`` test it finds, prints the report
of each bug found, then replays each failing token a few times to show it fails every time.
``plait run PATH...`` does the exploration only and exits 1 if any test failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if not p.name.startswith("_"))
        elif path.suffix == ".py" and path.exists():
            yield path
        else:
            raise SystemExit(f"plait: {raw}: no such Python file or directory")


_ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "pytest.ini", "conftest.py")


def _import_roots(path: Path) -> list[str]:
    """Where the project's own packages import from, found the way pytest does: the folder
    above the file's package (pytest's "prepend" import mode), and the rootdir, the nearest
    folder above with a project or pytest file (pyproject.toml, conftest.py, ...), and its
    ``src/`` when it has one."""
    folder = path.resolve().parent
    base = folder
    while (base / "__init__.py").exists() and base.parent != base:
        base = base.parent
    roots = [str(folder), str(base)]
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            roots.append(str(candidate))
            if (candidate / "src").is_dir():
                roots.append(str(candidate / "src"))
            break
    return list(dict.fromkeys(roots))


def _explored(path: Path) -> Iterator[tuple[str, Any]]:
    name = "plait_cli_" + "_".join(path.with_suffix("").parts).replace("-", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    added = [p for p in _import_roots(path) if p not in sys.path]
    sys.path[:0] = added
    try:
        spec.loader.exec_module(module)
    finally:
        for entry in added:
            sys.path.remove(entry)
    for attr, value in vars(module).items():
        if callable(value) and getattr(value, "_plait_spec", None) is not None:
            yield attr, value


def main(argv: list[str] | None = None) -> int:
    from plait import __version__

    parser = argparse.ArgumentParser(prog="plait", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"plait {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, text in (("run", "explore the tests; exit 1 if any fails"),
                          ("demo", "explore, show each bug found, and replay its token")):
        cmd = sub.add_parser(command, help=text)
        cmd.add_argument("paths", nargs="+", help="Python files or directories")
        cmd.add_argument("--replays", type=int, default=3, help="demo: replays per bug (default 3)")
    args = parser.parse_args(argv)
    from plait.threads.locks import install_types

    install_types()  # before the test files are imported: their module-level locks are plait's
    from plait import sql

    sql.install()  # ... and their connections' statements steps

    from plait.errors import InterleavingFailure
    from plait.runner import decode_token

    failed = passed = 0
    for path in _files(args.paths):
        for name, test in _explored(path):
            label = f"{path}::{name}"
            try:
                result = test.explore()
            except InterleavingFailure as failure:
                failed += 1
                print(f"\n=== {label}: FAILED ===\n{failure.report}\n")
                if args.command == "demo":
                    _demo_replay(test, failure.token, args.replays, decode_token)
                continue
            passed += 1
            print(f"=== {label}: passed: {result.summary()}")
    if args.command == "demo":
        print(f"\nplait demo: {failed} bug(s) found, each replayed {args.replays} times from its "
              f"token; {passed} fixed version(s) pass")
        return 0
    print(f"\n{failed} failed, {passed} passed")
    return 1 if failed else 0


def _demo_replay(test: Any, token: str, times: int, decode: Callable[[str], Any]) -> None:
    from plait.api import replay
    from plait.errors import InterleavingFailure

    info = decode(token)
    print(f"Replaying {token} ({len(token)} characters, {len(info['deviations'])} "
          f"deviation(s) from the default schedule) {times} times:")
    replayed = replay(token)(test)
    for attempt in range(1, times + 1):
        try:
            replayed.explore()
        except InterleavingFailure as failure:
            cause = failure.__cause__
            print(f"  replay {attempt}: fails again ({type(cause).__name__ if cause else 'failure'})")
        else:
            print(f"  replay {attempt}: PASSED (the failure did not reproduce)")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
