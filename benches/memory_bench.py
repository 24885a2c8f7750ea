"""Long explorations run in bounded memory: peak RSS after 10k and after 100k executions.

    .venv/bin/python benches/memory_bench.py [executions]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import plait

PROGRAM = '''
import asyncio, threading

class Counter:
    def __init__(self):
        self.value = 0

async def bump(counter):
    v = counter.value
    await asyncio.sleep(0)
    counter.value = v + 1

async def tasks():
    counter = Counter()
    await asyncio.gather(bump(counter), bump(counter), bump(counter))

def threads():
    counter = Counter()
    def work():
        v = counter.value
        counter.value = v + 1
    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
'''


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    folder = Path(tempfile.mkdtemp(prefix="plait-memory-"))
    (folder / "memory_program.py").write_text(PROGRAM)
    sys.path.insert(0, str(folder))
    import memory_program  # type: ignore[import-not-found]

    print(f"random strategy, {total} executions per family, peak RSS of this process")
    for family in ("tasks", "threads"):
        body = getattr(memory_program, family)
        for count in (total // 10, total):
            started = time.perf_counter()
            result = plait.explore(strategy="random", max_executions=count, max_seconds=3600,
                                   races="ignore")(body).explore()
            elapsed = time.perf_counter() - started
            print(f"  {family:<8} {result.executions:>7} executions in {elapsed:7.1f} s "
                  f"({result.executions / elapsed:6.0f}/s), peak RSS {rss_mib():6.1f} MiB")


if __name__ == "__main__":
    main()
