"""What plait's Lock and RLock cost outside explorations (they replace threading's from
the moment the pytest plugin loads): operations per second on the standard library's C
types and on plait's, in this process, and the ratio. Timings are noisy on a shared
machine: compare the ratios, measured side by side.

    .venv/bin/python benches/locks_bench.py
"""

from __future__ import annotations

import _thread
import queue
import threading
import timeit

from plait.threads import locks

N = 200_000


def _rate(statement: str, setup: dict[str, object]) -> float:
    best = min(timeit.repeat(statement, globals=setup, number=N, repeat=5))
    return best / N * 1e9  # ns per operation


def main() -> None:
    rows = []
    locks.uninstall_types()
    std = {"lock": _thread.allocate_lock(), "rlock": _thread.RLock(),
           "cond": threading.Condition(), "q": queue.Queue(), "event": threading.Event()}
    locks.install_types()
    ours = {"lock": threading.Lock(), "rlock": threading.RLock(),
            "cond": threading.Condition(), "q": queue.Queue(), "event": threading.Event()}
    assert type(ours["lock"]) is locks.Lock and type(std["lock"]) is not locks.Lock
    for label, statement in (("with Lock", "with lock: pass"),
                             ("with RLock", "with rlock: pass"),
                             ("Condition notify", "with cond: cond.notify()"),
                             ("Event set+is_set", "event.set(); event.is_set()"),
                             ("Queue put+get", "q.put(1); q.get()")):
        std_ns, our_ns = _rate(statement, std), _rate(statement, ours)
        rows.append((label, std_ns, our_ns))
    print(f"{'operation':<20} {'stdlib ns':>10} {'plait ns':>10} {'ratio':>7}")
    for label, std_ns, our_ns in rows:
        print(f"{label:<20} {std_ns:>10.0f} {our_ns:>10.0f} {our_ns / std_ns:>6.1f}x")


if __name__ == "__main__":
    main()
