"""Exhaustive exploration of the asyncio increment example: plait vs detangle.

Runs the same program (N tasks, each reads a value and writes it back incremented, with
`random.uniform` simulated I/O) under both tools until each has exhausted its space, and
prints executions, time, executions per second and the ratios. The program asserts
nothing, so both tools explore everything instead of stopping at the lost update.

Each exploration is repeated (3 to 15 times, the same rule for both tools) and the median
run is reported: a single run of 2 executions lasts well under a millisecond, so one cold
start or one hiccup of a loaded machine would otherwise decide the ratio. Beside them, the
*floor*: the same program on a reused stdlib loop with virtual time and no choices, the
least one execution costs the interpreter before any tool adds anything.

    .venv/bin/python benches/explore_bench.py
"""

from __future__ import annotations

import asyncio
import random
import sys
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

REPEAT = '''
def repeated(explore):
    """Run an exploration 3 to 15 times (until about 0.5 s are spent): the median run."""
    import time
    runs, spent = [], 0.0
    while len(runs) < 3 or (len(runs) < 15 and spent < 0.5):
        start = time.perf_counter()
        row = explore()
        row["seconds"] = time.perf_counter() - start
        spent += row["seconds"]
        runs.append(row)
    runs.sort(key=lambda r: r["seconds"])
    median = dict(runs[len(runs) // 2])
    median["repeats"] = len(runs)
    return median
'''

DETANGLE_DRIVER = PROGRAM + REPEAT + '''
import json, sys, detangle
n = int(sys.argv[1])

def explore():
    stats = detangle.explore(make(n), runs=10**6, strategy=detangle.DFS(max_delays=10**6),
                             shrink=False, database=False)
    return {"executions": stats.runs, "exhausted": stats.exhausted}

print(json.dumps(repeated(explore)))
'''

FLOOR = PROGRAM + REPEAT + '''
import asyncio, heapq

class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """The stdlib loop with time made virtual and nothing else: no choice, no recording."""
    now = 0.0

    def time(self):
        return self.now

    def _run_once(self):
        ready, timers = self._ready, self._scheduled
        if not ready and timers:
            self.now = max(self.now, timers[0]._when)
        end = self.now + self._clock_resolution
        while timers and timers[0]._when < end:
            handle = heapq.heappop(timers)
            handle._scheduled = False
            ready.append(handle)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
'''


def floor_us(n: int) -> float:
    """µs per execution of the program on the floor loop (reused, virtual time)."""
    namespace: dict = {}
    exec(FLOOR, namespace)
    loop = namespace["VirtualTimeLoop"]()
    body = namespace["make"](n)

    def explore() -> dict:
        for _ in range(100):
            loop.run_until_complete(body())
        return {"executions": 100}

    try:
        row = namespace["repeated"](explore)
    finally:
        loop.close()
    return row["seconds"] / row["executions"] * 1e6


def plait_run(n: int, timer_slack: float = 0.1) -> dict:
    import plait

    namespace: dict = {}
    exec(PROGRAM + REPEAT, namespace)
    test = plait.explore(strategy="dfs", max_executions=10**6, max_seconds=600,
                         timer_slack=timer_slack)(namespace["make"](n))

    def explore() -> dict:
        result = test.explore()
        return {"executions": result.executions, "exhausted": result.exhausted}

    return namespace["repeated"](explore)


def main() -> None:
    python = peer_python("detangle")
    print("plait reorders timers due within timer_slack (0.1 s) of each other, detangle keeps "
          "deadline order;\nthe timer_slack=0 row (plait/0) explores the same space as "
          "detangle. Seconds: the median of 3-15 runs of the whole exploration, both tools alike.")
    print("floor: the program on a reused stdlib loop with virtual time and no choices; "
          "'x floor' is a tool's µs per execution over the floor's.")
    print(f"{'tasks':>5}  {'tool':<9} {'executions':>10} {'exhausted':>9} {'seconds':>8} "
          f"{'exec/s':>9} {'µs/exec':>8} {'x floor':>8}")
    for n in (2, 3, 4):
        floor = floor_us(n)
        ours = plait_run(n)
        strict = plait_run(n, timer_slack=0.0)
        theirs = run_peer(python, DETANGLE_DRIVER, str(n))
        for name, row in (("plait", ours), ("plait/0", strict), ("detangle", theirs)):
            rate = row["executions"] / row["seconds"] if row["seconds"] else 0.0
            row["rate"] = rate
            per = 1e6 / rate if rate else 0.0
            print(f"{n:>5}  {name:<9} {row['executions']:>10} {row['exhausted']!s:>9} "
                  f"{row['seconds']:>8.4f} {rate:>9.0f} {per:>8.1f} {per / floor:>7.1f}x")
        print(f"{n:>5}  {'floor':<9} {'':>10} {'':>9} {'':>8} {1e6 / floor:>9.0f} {floor:>8.1f}")
        print(f"       plait/detangle: exec/s {ratio(ours['rate'], theirs['rate'])}; with "
              f"timer_slack=0: exec/s {ratio(strict['rate'], theirs['rate'])}, time to exhaust "
              f"detangle/plait {ratio(theirs['seconds'], strict['seconds'])}; the floor itself "
              f"runs {ratio(1e6 / floor, theirs['rate'])} detangle's exec/s")
    print(f"plait process peak RSS: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    random.seed(0)
    main()
