"""What the outside world's steps cost: file-system calls with and without plait.

Per call of ``os.path.exists`` (a real ``stat``), in one process, so the ratios hold on a
loaded machine even when the absolute figures do not:

- plain: no exploration (nothing is patched outside an execution: this is what every
  other test pays);
- ``external_step`` outside an exploration (the call SQL integrations make on every
  statement);
- inside an execution, called by library code (the standard library, plait), with the
  wrappers in place and without them: the wrapper looks at its caller and passes through;
- inside an execution, called by the user's code, with and without the wrappers: with
  them it is a scheduling point with the path's footprint (one actor, so no thread
  switch). The user's loop is traced either way (on 3.11 ``sys.settrace`` sees each of its
  instructions, and the tracer makes its own point at ``os.path.exists``'s attribute read),
  so the difference is what the external step adds;
- the cost of putting the wrappers in place and back (once per exploration).

Then the file-writer example: executions and seconds to find the race and to exhaust the
locked twin. Prints figures only.

    .venv/bin/python benches/world_bench.py
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import plait
from plait.world import Effect, external_step, intercept

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


def per_call(run: Any) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / N * 1e9


def main() -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="plait-world-"), "f")
    Path(path).write_text("x")
    # A caller the wrappers classify as library code: a function whose file is in the stdlib.
    library_file = os.path.join(sysconfig.get_paths()["stdlib"], "_plait_bench_library.py")
    scope: dict[str, Any] = {"os": os, "N": N, "path": path}
    exec(compile("def library_loop():\n    for _ in range(N):\n        os.path.exists(path)\n",
                 library_file, "exec"), scope)
    library_loop = scope["library_loop"]

    def user_loop(path: str = path) -> None:  # a local: no traced closure read per call
        for _ in range(N):
            os.path.exists(path)

    def step_loop() -> None:
        effects = [Effect(("file", path), False)]
        for _ in range(N):
            external_step("x", effects)

    figures: dict[str, float] = {}
    figures["plain"] = per_call(user_loop)
    figures["external_step outside"] = per_call(step_loop)

    def body() -> None:
        for name, loop in (("library caller", library_loop), ("user caller", user_loop)):
            figures[f"{name}, in an execution"] = per_call(loop)
            intercept.uninstall()
            figures[f"{name}, no wrappers"] = per_call(loop)
            intercept.install()

    plait.explore(strategy="dfs", max_executions=1, races="ignore")(body).explore()

    start = time.perf_counter()
    rounds = 200
    for _ in range(rounds):
        intercept.install()
        intercept.uninstall()
    install = (time.perf_counter() - start) / rounds * 1e6

    base = figures["plain"]
    print(f"os.path.exists, per call (best of 5 x {N}; ratios against plain):")
    for name, ns in figures.items():
        print(f"  {name:<34} {ns:8.0f} ns  x{ns / base:.2f}")
    print(f"  install + uninstall the wrappers    {install:8.1f} µs per exploration")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import file_writer

    start = time.perf_counter()
    try:
        file_writer.test_file_writers.explore()
        print("file_writer: race NOT found")
    except plait.InterleavingFailure as failure:
        print(f"file_writer race: {failure.result.summary()}, "
              f"{time.perf_counter() - start:.2f}s with the report")
    start = time.perf_counter()
    locked = file_writer.test_file_writers_locked.explore()
    print(f"file_writer locked: {locked.summary()}, {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
