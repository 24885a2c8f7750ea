"""What one thread switch costs under plait: the OS-thread baton handoff.

Two threads each make N explicit scheduling points (`plait.point()`). Under `dfs`'s first
execution no switch happens (the running thread keeps going); under `random` about half of
the points switch threads. The difference, divided by the number of switches, is the
handoff cost. Beside it, measured in the same run, a ``threading.Condition`` ping-pong
between two threads (the interpreter's own handoff), on one CPU as plait's threads run
(``plait.threads.affinity``) and on the process's CPUs. Prints figures and the ratio.

    .venv/bin/python benches/handoff_bench.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import plait
from plait.threads import scheduler

PROGRAM = '''
import threading, plait
def make(n):
    def body():
        def work():
            for _ in range(n):
                plait.point()
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
    return body
'''


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    folder = Path(tempfile.mkdtemp(prefix="plait-handoff-"))
    (folder / "handoff_program.py").write_text(PROGRAM)
    sys.path.insert(0, str(folder))
    import handoff_program  # type: ignore[import-not-found]

    switches = 0
    original = scheduler.Scheduler._switch

    def counting(self: scheduler.Scheduler, me: scheduler.Actor, target: scheduler.Actor) -> None:
        nonlocal switches
        switches += 1
        original(self, me, target)

    scheduler.Scheduler._switch = counting  # type: ignore[method-assign]
    rows = []
    for strategy in ("dfs", "random"):
        switches = 0
        # skip_modules: this script's own wrapper above is not code under test
        test = plait.explore(strategy=strategy, max_executions=1, races="ignore",
                             skip_modules=[__file__])(
            handoff_program.make(n))
        start = time.perf_counter()
        test.explore()
        rows.append((strategy, time.perf_counter() - start, switches))
    (_, t_still, s_still), (_, t_switch, s_switch) = rows
    points = 2 * n
    print(f"{points} scheduling points in 2 threads")
    print(f"  no switches (dfs default):  {t_still:.3f} s, {t_still / points * 1e6:.1f} µs per point, "
          f"{s_still} switches")
    print(f"  random:                     {t_switch:.3f} s, {s_switch} switches")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from profile_bench import limit_condition_handoff

    one_cpu, any_cpu = limit_condition_handoff(), limit_condition_handoff(one_cpu=False)
    print(f"  threading.Condition ping-pong: {one_cpu:.1f} µs per handoff on one CPU, "
          f"{any_cpu:.1f} µs on the process's CPUs (Python {sys.version.split()[0]})")
    if s_switch > s_still:
        cost = (t_switch - t_still) / (s_switch - s_still)
        print(f"  => one thread handoff costs {cost * 1e6:.1f} µs = {cost * 1e6 / one_cpu:.1f}x "
              f"the Condition ping-pong (baton: a real lock per actor, GIL released while "
              f"waiting; the threads share one CPU)")


if __name__ == "__main__":
    main()
