"""Executions and seconds to exhaust the lost-update counter: plait vs frontrun and interleave-test.

Families, each explored to exhaustion (or until the per-run cap) by every tool that can:

* threads: N threads (2, 3, 4) each run ``v = c.value; c.value = v + 1`` on one Counter;
* tasks: N asyncio tasks doing the same with ``await asyncio.sleep(0)`` between read and write;
* examples: ``examples/lost_update.py``, ``check_then_act.py`` and ``startup_order.py`` (their
  failing tests, with ``stop_on_first=False``, so every tool walks the whole space).

The counters assert nothing, so no tool stops early. All programs are written to real files
in a temporary directory and imported from there by every tool (the examples with their
``import plait`` / ``@plait.explore()`` lines dropped), so everyone runs the same code.

plait runs in this process (``dpor`` and ``dfs``); frontrun 0.7 (DPOR, ``preemption_bound=None``)
runs in the peer venv under its ``frontrun`` launcher; interleave-test 0.1 (CHESS-style DFS with
an unbounded preemption bound, opcode and line granularity; threads only, Python 3.12+) runs in a
3.12 peer venv. Every tool's exploration is repeated while under 0.5 s have been spent (at most
15 runs) and the median run is reported, the same rule for all. Figures and ratios are
printed; nothing is asserted on time.

    .venv/bin/python benches/threads_bench.py [--cap SECONDS] [--family threads,tasks,examples]
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peak_rss_mib, peer_python, peer_tool, run_peer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("lost_update", "check_then_act", "startup_order")
SIZES = (2, 3, 4)

COUNTER = '''
import asyncio
import threading


class Counter:
    def __init__(self): self.value = 0
    def increment(self):
        v = self.value
        self.value = v + 1


def body(n):
    c = Counter()
    ts = [threading.Thread(target=c.increment) for _ in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()


def make(n):
    def counter_threads():
        body(n)
    return counter_threads


async def aincrement(c):
    v = c.value
    await asyncio.sleep(0)
    c.value = v + 1


def amake(n):
    async def counter_tasks():
        c = Counter()
        await asyncio.gather(*(aincrement(c) for _ in range(n)))
    return counter_tasks
'''

# The program above is the issue's, line for line (line granularity depends on the layout).

# One rule for every tool: a whole exploration is repeated while less than 0.5 s have been
# spent (at most 15 runs) and the median run by time is reported. A space of 2-36
# executions is explored in milliseconds, so one run would measure a cold start (imports,
# first-call caches) more than executions; a run near the cap is run once.
REPEAT = '''
def repeated(once):
    import time
    runs, spent = [], 0.0
    while not runs or (len(runs) < 15 and spent < 0.5):
        seconds, result = once()
        spent += seconds
        runs.append((seconds, len(runs), result))
    runs.sort(key=lambda run: run[:2])
    seconds, _, result = runs[len(runs) // 2]
    return seconds, result, len(runs)
'''

# The examples' test bodies as frontrun's setup / workers / invariant. The workers call the
# example module's own functions; the invariant is the example test's assertion.
FRONTRUN_EXAMPLES = '''
def example(name):
    m = importlib.import_module("plait_bench_" + name)
    if name == "lost_update":
        def setup():
            m.db["k"] = 0
            return m.db

        async def inc(db):
            await m.increment("k")

        return setup, [inc, inc], lambda db: db["k"] == 2
    if name == "check_then_act":
        async def first(account):
            await account.withdraw(80)

        async def second(account):
            await m.later(0.005, 50, account)

        return (lambda: m.Account(100)), [first, second], lambda account: account.balance >= 0
    if name == "startup_order":
        async def start(service):
            await service.start()

        async def client(service):
            assert await m.client(service) == "hello"

        return m.Service, [start, client], lambda service: True
    raise SystemExit("unknown example " + name)
'''

FRONTRUN_DRIVER = REPEAT + '''
import asyncio, importlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import frontrun
import plait_bench_counter as prog
''' + FRONTRUN_EXAMPLES + '''
family, what, cap = sys.argv[2], sys.argv[3], float(sys.argv[4])
LIMIT = 10**6
kwargs = dict(preemption_bound=None, stop_on_first=False, max_executions=LIMIT,
              total_timeout=cap, reproduce_on_failure=0)


def once():
    start = time.perf_counter()
    if family == "threads":
        result = frontrun.explore(setup=prog.Counter, workers=prog.Counter.increment,
                                  count=int(what), invariant=lambda c: True, **kwargs)
    elif family == "tasks":
        result = asyncio.run(frontrun.explore(setup=prog.Counter, workers=prog.aincrement,
                                              count=int(what), invariant=lambda c: True,
                                              **kwargs))
    else:
        setup, workers, invariant = example(what)
        result = asyncio.run(frontrun.explore(setup=setup, workers=workers,
                                              invariant=invariant, **kwargs))
    return time.perf_counter() - start, result


seconds, result, repeats = repeated(once)
# frontrun's thread/async modes leave .exhausted unset (only execution="process" fills it).
# With preemption_bound=None, a search that ended below max_executions and total_timeout and
# is not inconclusive has covered its space: report that as exhausted, marked as inferred.
if result.exhausted is not None:
    exhausted, note = bool(result.exhausted), ""
elif result.inconclusive_reason:
    exhausted, note = False, "inconclusive: " + result.inconclusive_reason.split(". ")[0]
elif result.num_explored >= LIMIT or seconds >= cap:
    exhausted, note = False, "budget spent"
else:
    exhausted, note = True, "exhausted inferred (frontrun leaves .exhausted unset)"
if result.failures:
    note = (note + "; " if note else "") + f"{len(result.failures)} failing"
print(json.dumps({"executions": result.num_explored, "seconds": seconds,
                  "exhausted": exhausted, "note": note, "repeats": repeats}))
'''

INTERLEAVE_DRIVER = REPEAT + '''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import interleave_test as it
import plait_bench_counter as prog
n, granularity, cap = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])


class CappedDFS(it.DFSStrategy):
    """An unbounded preemption bound makes the DFS exhaustive; explore() has no time budget,
    so a custom strategy (the documented extension point) says "no more" past the cap. One
    explore() call: resuming a DFSStrategy across calls changes the decisions it sees."""

    def __init__(self, cap):
        super().__init__(max_preemptions=10**9)
        self.deadline = time.perf_counter() + cap

    def more(self):
        return super().more() and time.perf_counter() < self.deadline


def once():
    start = time.perf_counter()
    result = it.explore(prog.make(n), strategy=CappedDFS(cap), iterations=10**9, seed=0,
                        granularity=granularity)
    return time.perf_counter() - start, result


seconds, result, repeats = repeated(once)
print(json.dumps({"executions": result.schedules_run, "seconds": seconds,
                  "exhausted": result.exhausted, "note": "", "repeats": repeats}))
'''


def write_programs(where: Path) -> None:
    (where / "plait_bench_counter.py").write_text(COUNTER)
    for name in EXAMPLES:
        source = (ROOT / "examples" / f"{name}.py").read_text()
        kept = [line for line in source.splitlines()
                if line.strip() != "import plait" and not line.strip().startswith("@plait.")]
        (where / f"plait_bench_{name}.py").write_text("\n".join(kept) + "\n")


def plait_row(fn, strategy: str, cap: float) -> dict:
    import plait
    from plait.errors import ConfigError, InterleavingFailure

    try:
        test = plait.explore(strategy=strategy, max_executions=10**6, max_seconds=cap,
                             stop_on_first=False)(fn)
    except ConfigError as exc:
        return {"skip": f"n/a ({strategy} not wired: {exc})" if strategy == "dpor" else str(exc)}
    def once() -> tuple[float, tuple[Any, str]]:
        start = time.perf_counter()
        note = ""
        try:
            with warnings.catch_warnings():  # the counters race on purpose: no RaceWarning
                warnings.filterwarnings("ignore", message=r"plait: .*data race")
                result = test.explore()
        except InterleavingFailure as failure:
            result = failure.result
            note = f"failing schedules found (first at execution {result.failed_at})"
        return time.perf_counter() - start, (result, note)

    namespace: dict[str, Any] = {}
    exec(REPEAT, namespace)
    try:
        seconds, (result, note), repeats = namespace["repeated"](once)
    except ConfigError as exc:
        return {"skip": f"n/a ({strategy} not wired)" if strategy == "dpor" else str(exc)}
    if result is None:
        return {"skip": "failed, no result attached"}
    if not result.exhausted:
        note = (note + "; " if note else "") + f"stopped by {result.stopped_by or '?'}"
    return {"executions": result.executions, "seconds": seconds, "exhausted": result.exhausted,
            "note": note, "repeats": repeats}


def peer_row(python: Path | None, script: str, args: list[str], cap: float,
             launcher: tuple[str, ...] = ()) -> dict:
    if python is None:
        return {"skip": "peer venv unavailable"}
    try:
        return run_peer(python, script, *args, timeout=cap * 2 + 120, launcher=launcher)
    except subprocess.TimeoutExpired:
        return {"skip": f"killed after {cap * 2 + 120:.0f} s (no figures)"}
    except Exception as exc:  # a peer's failure is a row, not the end of the benchmark
        return {"skip": "error: " + str(exc).strip().splitlines()[-1][:120]}


HEADER = (f"{'size':<15} {'tool':<16} {'strategy':<22} {'executions':>10} {'exhausted':>9} "
          f"{'seconds':>8} {'exec/s':>8} {'runs':>4}  note")


def show(size: str, tool: str, strategy: str, row: dict) -> None:
    if "skip" in row:
        print(f"{size:<15} {tool:<16} {strategy:<22} {row['skip']}")
        return
    row["rate"] = row["executions"] / row["seconds"] if row["seconds"] else 0.0
    exhausted = "yes" if row["exhausted"] else "NO"
    print(f"{size:<15} {tool:<16} {strategy:<22} {row['executions']:>10} {exhausted:>9} "
          f"{row['seconds']:>8.3f} {row['rate']:>8.0f} {row.get('repeats', 1):>4}  "
          f"{row.get('note', '')}", flush=True)


def ratio(a: float, b: float) -> str:
    if not b:
        return "n/a"
    r = a / b
    return f"{r:.1f}x" if r >= 0.95 else f"{r:.2f}x"


def compare(label: str, ours: dict, theirs: dict) -> str:
    """One side of a ratio line: peer / plait for executions and seconds (when both exhausted)."""
    if "skip" in ours or "skip" in theirs:
        return f"{label}: n/a"
    text = f"{label}: "
    if ours["exhausted"] and theirs["exhausted"]:
        text += (f"executions {ratio(theirs['executions'], ours['executions'])}, "
                 f"seconds {ratio(theirs['seconds'], ours['seconds'])}")
    else:
        text += "not both exhausted"
    return text + f", plait exec/s {ratio(ours['rate'], theirs['rate'])}"


def ratio_lines(size: str, plait_rows: dict[str, dict], peers: list[tuple[str, dict]]) -> None:
    for name, theirs in peers:
        if "skip" in theirs:
            continue
        parts = [compare(f"vs plait {s}", row, theirs) for s, row in plait_rows.items()]
        print(f"{'':<15}   ratio {name} / plait:  " + "  |  ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cap", type=float, default=45.0,
                        help="seconds per run for every tool (default 45)")
    parser.add_argument("--family", default="threads,tasks,examples")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    cap = args.cap
    families = args.family.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.perf_counter()

    try:
        frontrun_python: Path | None = peer_python("frontrun")
    except (SystemExit, subprocess.CalledProcessError) as exc:
        print(f"frontrun peer venv unavailable: {exc}")
        frontrun_python = None
    try:
        interleave_python: Path | None = peer_python("interleave-test", version="3.12")
    except (SystemExit, subprocess.CalledProcessError) as exc:
        print(f"interleave-test peer venv unavailable: {exc}")
        interleave_python = None
    launcher = () if frontrun_python is None else (str(peer_tool(frontrun_python, "frontrun")),)

    work = Path(tempfile.mkdtemp(prefix="plait-threads-bench-"))
    write_programs(work)
    sys.path.insert(0, str(work))
    prog = importlib.import_module("plait_bench_counter")

    from plait import settings

    print(f"plait (Python {sys.version.split()[0]}), strategies {settings.STRATEGIES}; "
          f"cap {cap:.0f} s per run; programs in {work}")
    print("ratios are peer / plait: executions and seconds above 1x mean plait needs fewer / "
          "is faster (only when both exhausted); 'plait exec/s' is plait's rate / the peer's.")

    print("seconds: the median of 'runs' whole explorations (repeated while under 0.5 s were "
          "spent, at most 15), the same rule for every tool: small spaces measure executions, "
          "not a cold start.")
    print("same code for everyone; harness differs: plait and interleave-test run the body "
          "(main thread or task starts the N workers and joins them), frontrun's explore() "
          "spawns the N workers itself (setup / workers / invariant).")
    print("granularity: plait 'access' (before each shared access), interleave-test 'opcode' "
          "or 'line', frontrun its bytecode-level accesses; sleeps: plait virtual time "
          "(timer_slack 0.1), frontrun clock='real' with patch_sleep (a sleep is a yield).")

    for family in families:
        print()
        if family == "threads":
            print("== threads: lost-update counter, N threads (no assertion) ==")
        elif family == "tasks":
            print("== tasks: lost-update counter, N asyncio tasks, sleep(0) between read and "
                  "write (no assertion) ==")
        else:
            print("== examples: failing tests of examples/, stop_on_first=False ==")
        print(HEADER)
        cases = [str(n) for n in sizes] if family != "examples" else list(EXAMPLES)
        for case in cases:
            if family == "threads":
                fn, size = prog.make(int(case)), f"{case} threads"
            elif family == "tasks":
                fn, size = prog.amake(int(case)), f"{case} tasks"
            else:
                module = importlib.import_module(f"plait_bench_{case}")
                fn = {"lost_update": "test_two_increments", "check_then_act": "test_withdrawals",
                      "startup_order": "test_startup"}[case]
                fn, size = getattr(module, fn), case
            ours = {}
            for strategy in ("dpor", "dfs"):
                ours[strategy] = plait_row(fn, strategy, cap)
                show(size, "plait", strategy + ("" if family != "threads" else " (access)"),
                     ours[strategy])
            theirs: list[tuple[str, dict]] = []
            row = peer_row(frontrun_python, FRONTRUN_DRIVER,
                           [str(work), family, case, str(cap)], cap, launcher)
            show(size, "frontrun 0.7", "dpor (unbounded)", row)
            theirs.append(("frontrun", row))
            if family == "threads":
                for granularity in ("opcode", "line"):
                    row = peer_row(interleave_python, INTERLEAVE_DRIVER,
                                   [str(work), case, granularity, str(cap)], cap)
                    show(size, "interleave-test", f"dfs ({granularity})", row)
                    theirs.append((f"interleave-test {granularity}", row))
            else:
                show(size, "interleave-test", "-",
                     {"skip": "n/a (threads only: no asyncio support)"})
            ratio_lines(size, ours, theirs)
    print()
    print(f"plait process peak RSS: {peak_rss_mib():.0f} MiB (peers run in child processes)")
    print(f"total wall time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
