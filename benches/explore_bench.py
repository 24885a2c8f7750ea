"""Exhaustive exploration of the asyncio increment example: plait vs detangle.

Runs the same program (N tasks, each reads a value and writes it back incremented, with
`random.uniform` simulated I/O) under both tools until each has exhausted its space, and
prints executions, time, executions per second and the ratios. The program asserts
nothing, so both tools explore everything instead of stopping at the lost update.

    .venv/bin/python benches/explore_bench.py
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peak_rss_mib, peer_python, ratio, run_peer

PROGRAM = '''
import asyncio, random
db = {}
async def get_value(k):
    await asyncio.sleep(random.uniform(0, 0.01))
    return db[k]
async def set_value(k, v):
    await asyncio.sleep(random.uniform(0, 0.01))
    db[k] = v
async def increment(k):
    v = await get_value(k)
    await set_value(k, v + 1)
def make(n):
    async def body():
        db["k"] = 0
        await asyncio.gather(*(increment("k") for _ in range(n)))
    return body
'''

DETANGLE_DRIVER = PROGRAM + '''
import json, sys, time, detangle
n = int(sys.argv[1])
start = time.perf_counter()
stats = detangle.explore(make(n), runs=10**6, strategy=detangle.DFS(max_delays=10**6),
                         shrink=False, database=False)
print(json.dumps({"executions": stats.runs, "seconds": time.perf_counter() - start,
                  "exhausted": stats.exhausted}))
'''


def plait_run(n: int, timer_slack: float = 0.1) -> dict:
    import plait

    namespace: dict = {}
    exec(PROGRAM, namespace)
    test = plait.explore(strategy="dfs", max_executions=10**6, max_seconds=600,
                         timer_slack=timer_slack)(namespace["make"](n))
    start = time.perf_counter()
    result = test.explore()
    return {"executions": result.executions, "seconds": time.perf_counter() - start,
            "exhausted": result.exhausted}


def main() -> None:
    python = peer_python("detangle")
    print("plait reorders timers due within timer_slack (0.1 s) of each other, detangle keeps "
          "deadline order;\nthe timer_slack=0 row explores the same space as detangle.")
    print(f"{'tasks':>5}  {'tool':<9} {'executions':>10} {'exhausted':>9} {'seconds':>8} "
          f"{'exec/s':>9}")
    for n in (2, 3):
        ours = plait_run(n)
        strict = plait_run(n, timer_slack=0.0)
        theirs = run_peer(python, DETANGLE_DRIVER, str(n))
        for name, row in (("plait", ours), ("plait/0", strict), ("detangle", theirs)):
            rate = row["executions"] / row["seconds"] if row["seconds"] else 0.0
            row["rate"] = rate
            print(f"{n:>5}  {name:<9} {row['executions']:>10} {row['exhausted']!s:>9} "
                  f"{row['seconds']:>8.3f} {rate:>9.0f}")
        print(f"       plait/detangle: exec/s {ratio(ours['rate'], theirs['rate'])}; with "
              f"timer_slack=0: exec/s {ratio(strict['rate'], theirs['rate'])}, time to exhaust "
              f"detangle/plait {ratio(theirs['seconds'], strict['seconds'])}")
    print(f"plait process peak RSS: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    random.seed(0)
    main()
