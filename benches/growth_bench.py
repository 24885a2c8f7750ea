"""Cost as the work grows: 2-5 actors x 1-4 steps each, for plait and the peers.

Each actor increments one shared counter `steps` times (`v = c.value; c.value = v + 1`; a
task awaits `asyncio.sleep(0)` between the read and the write). Every cell runs in its own
process, so its peak RSS is its own, explored to exhaustion or until the cap (executions
or seconds, whichever comes first). Printed per cell: executions, exhausted, seconds,
peak RSS (MiB). Tools: tasks with plait (dpor), detangle (DFS) and frontrun (DPOR);
threads with plait (dpor) and frontrun (DPOR). Figures only; ratios against the peer in
the same row where both ran.

    .venv/bin/python benches/growth_bench.py [--cap SECONDS] [--max-executions N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peer_python, peer_tool

PROGRAM = '''
import asyncio, threading

class Counter:
    def __init__(self):
        self.value = 0

def work(c, steps):
    for _ in range(steps):
        v = c.value
        c.value = v + 1

async def awork(c, steps):
    for _ in range(steps):
        v = c.value
        await asyncio.sleep(0)
        c.value = v + 1

def make_threads(n, steps):
    def counter_threads():
        c = Counter()
        ts = [threading.Thread(target=work, args=(c, steps)) for _ in range(n)]
        for t in ts: t.start()
        for t in ts: t.join()
    return counter_threads

def make_tasks(n, steps):
    async def counter_tasks():
        c = Counter()
        await asyncio.gather(*(awork(c, steps) for _ in range(n)))
    return counter_tasks
'''

COMMON = '''
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import plait_growth_program as prog
family, n, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cap, limit = float(sys.argv[5]), int(sys.argv[6])

def done(executions, exhausted, seconds):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"executions": executions, "exhausted": bool(exhausted),
                      "seconds": seconds, "rss": rss}))
'''

PLAIT = COMMON + '''
import warnings, plait
from plait.errors import InterleavingFailure
fn = prog.make_threads(n, steps) if family == "threads" else prog.make_tasks(n, steps)
test = plait.explore(strategy="dpor", max_executions=limit, max_seconds=cap, races="ignore",
                     stop_on_first=False)(fn)
start = time.perf_counter()
result = test.explore()
done(result.executions, result.exhausted, time.perf_counter() - start)
'''

DETANGLE = COMMON + '''
import detangle
start = time.perf_counter()
stats = detangle.explore(prog.make_tasks(n, steps), runs=limit, max_duration=cap,
                         strategy=detangle.DFS(max_delays=10**6), shrink=False, database=False)
done(stats.runs, stats.exhausted, time.perf_counter() - start)
'''

FRONTRUN = COMMON + '''
import asyncio, frontrun
kwargs = dict(preemption_bound=None, stop_on_first=False, max_executions=limit,
              total_timeout=cap, reproduce_on_failure=0, count=n, setup=prog.Counter,
              invariant=lambda c: True)
start = time.perf_counter()
if family == "threads":
    result = frontrun.explore(workers=lambda c: prog.work(c, steps), **kwargs)
else:
    async def worker(c):
        await prog.awork(c, steps)
    result = asyncio.run(frontrun.explore(workers=worker, **kwargs))
seconds = time.perf_counter() - start
# frontrun leaves .exhausted unset outside process mode: ended below both budgets and not
# inconclusive means it covered its space (marked as inferred in the module docstring)
exhausted = result.exhausted if result.exhausted is not None else (
    not result.inconclusive_reason and result.num_explored < limit and seconds < cap)
done(result.num_explored, exhausted, seconds)
'''


def run(python: str | Path, script: str, args: list[str], cap: float,
        launcher: tuple[str, ...] = ()) -> dict:
    try:
        finished = subprocess.run([*launcher, str(python), "-c", script, *args],
                                  capture_output=True, text=True, timeout=cap * 3 + 60)
    except subprocess.TimeoutExpired:
        return {"skip": "killed (no figures)"}
    if finished.returncode != 0:
        return {"skip": "error: " + (finished.stderr.strip().splitlines() or ["?"])[-1][:60]}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def cell(row: dict) -> str:
    if "skip" in row:
        return f"{row['skip'][:34]:<34}"
    mark = "" if row["exhausted"] else "+"
    return f"{row['executions']:>7}{mark:<1} {row['seconds']:6.2f}s {row['rss']:5.0f}MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cap", type=float, default=3.0, help="seconds per cell (default 3)")
    parser.add_argument("--max-executions", type=int, default=100_000)
    parser.add_argument("--actors", default="2,3,4,5")
    parser.add_argument("--steps", default="1,2,3,4")
    args = parser.parse_args()
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="plait-growth-"))
    (work / "plait_growth_program.py").write_text(PROGRAM)
    peers = peer_python("detangle", "frontrun")
    frontrun = (str(peer_tool(peers, "frontrun")),)
    tools = {
        "tasks": [("plait dpor", sys.executable, PLAIT, ()), ("detangle dfs", peers, DETANGLE, ()),
                  ("frontrun dpor", peers, FRONTRUN, frontrun)],
        "threads": [("plait dpor", sys.executable, PLAIT, ()),
                    ("frontrun dpor", peers, FRONTRUN, frontrun)],
    }
    print(f"cap per cell: {args.cap:g} s or {args.max_executions} executions; a '+' after "
          "the executions: not exhausted within the cap. Each cell: executions, seconds, "
          "peak RSS of its process.")
    for family, columns in tools.items():
        print(f"\n== {family}: N actors x K increments each ==")
        print(f"{'N x K':<6} " + " ".join(f"{name:<34}" for name, *_ in columns)
              + "  plait exec/s vs " + ", ".join(name for name, *_ in columns[1:]))
        for n in [int(v) for v in args.actors.split(",")]:
            for steps in [int(v) for v in args.steps.split(",")]:
                argv = [str(work), family, str(n), str(steps), str(args.cap),
                        str(args.max_executions)]
                rows = [run(python, script, argv, args.cap, launcher)
                        for _, python, script, launcher in columns]
                ratios = []
                ours = rows[0]
                for theirs in rows[1:]:
                    if "skip" in ours or "skip" in theirs or not theirs["executions"]:
                        ratios.append("n/a")
                        continue
                    rate = ours["executions"] / ours["seconds"]
                    ratios.append(f"{rate / (theirs['executions'] / theirs['seconds']):.1f}x")
                print(f"{n}x{steps:<4} " + " ".join(cell(r) for r in rows) + "  "
                      + ", ".join(ratios), flush=True)
    print(f"\ntotal wall time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
