"""Cooperative runs: plait against pytest-asyncio-cooperative on the same generated suites.

Run with the interpreter that has plait installed::

    python benches/cooperative_bench.py            # every suite
    python benches/cooperative_bench.py --quick    # skip the 2,000-test suites

The peer is installed from PyPI into ``benches/.venv-peers`` by ``benches/peers.py``
(created on first use; it never becomes a dependency of plait). Each suite is a generated test file
run once by each plugin in a fresh pytest process; the script prints wall time, CPU
time (user + system of the pytest process) and the peer/plait ratios. Plugin
autoloading is off in both runs and each loads only its own plugin, so other installed
plugins (Hypothesis, xdist, ...) cost neither side anything; both get the same
max-tasks limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import peer_python as _peer_python  # noqa: E402

PEER = "pytest-asyncio-cooperative"


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    tests: int
    sleep: float
    max_tasks: int


SUITES = [
    Suite("50 tests x 0.2 s sleep", 50, 0.2, 100),
    Suite("2,000 tests x 0.2 s sleep (max tasks 100)", 2000, 0.2, 100),
    Suite("2,000 tests x 0.2 s sleep (max tasks 2,000)", 2000, 0.2, 2000),
    Suite("2,000 trivial tests", 2000, 0.0, 100),
    Suite("1 test sleeping 3 s (CPU time)", 1, 3.0, 100),
]


def suite_source(suite: Suite, marker: str) -> str:
    body = "await asyncio.sleep(SLEEP)" if suite.sleep else "pass"
    return textwrap.dedent(
        f"""
        import asyncio
        import pytest

        SLEEP = {suite.sleep!r}

        @pytest.mark.{marker}
        @pytest.mark.parametrize("i", range({suite.tests}))
        async def test_generated(i):
            {body}
        """
    )


def peer_python() -> Path:
    return _peer_python(PEER, "pytest")


def plugin_module(python: Path | str, distribution: str) -> str:
    """The pytest11 entry point module of ``distribution`` in ``python``'s environment."""
    code = (
        "import importlib.metadata as m\n"
        f"d = m.distribution({distribution!r})\n"
        "print(next(e.value for e in d.entry_points if e.group == 'pytest11'))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def version(python: Path | str, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "not installed"


def run(python: Path | str, directory: Path, args: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one pytest process, and its summary line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr.strip()[-200:]
    return wall, cpu, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 2,000-test suites")
    parser.add_argument("--only", default="", help="run the suites whose name contains this")
    args = parser.parse_args()

    peer = peer_python()
    peer_plugin = plugin_module(peer, PEER)
    print(f"plait:  {sys.executable}  pytest {version(sys.executable, 'pytest')}")
    print(f"peer:   {peer}  pytest {version(peer, 'pytest')}, {PEER} {version(peer, PEER)}")
    print()
    header = f"{'suite':45} {'runner':7} {'wall s':>8} {'cpu s':>8}  result"
    print(header)
    print("-" * len(header))
    rows = []
    for suite in SUITES:
        if args.quick and suite.tests >= 2000:
            continue
        if args.only and args.only not in suite.name:
            continue
        with tempfile.TemporaryDirectory(prefix="plait-coop-bench-") as tmp:
            directory = Path(tmp)
            (directory / "pytest.ini").write_text("[pytest]\n")
            test_file = directory / "test_generated.py"
            results = {}
            for runner, python, marker, options in (
                (
                    "plait",
                    sys.executable,
                    "plait_cooperative",
                    [
                        "-p",
                        "plait.cooperative.plugin",
                        f"--plait-cooperative-max-tasks={suite.max_tasks}",
                    ],
                ),
                (
                    "peer",
                    peer,
                    "asyncio_cooperative",
                    ["-p", peer_plugin, f"--max-asyncio-tasks={suite.max_tasks}"],
                ),
            ):
                test_file.write_text(suite_source(suite, marker))
                wall, cpu, summary = run(python, directory, options)
                results[runner] = (wall, cpu)
                print(f"{suite.name:45} {runner:7} {wall:8.2f} {cpu:8.2f}  {summary}", flush=True)
            rows.append((suite.name, results))
    print()
    print(f"{'suite':45} {'wall peer/plait':>16} {'cpu peer/plait':>15}")
    for name, results in rows:
        (pw, pc), (qw, qc) = results["plait"], results["peer"]
        print(f"{name:45} {qw / pw:15.2f}x {qc / pc:14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
