"""Run every benchmark in turn (each prints its own figures and ratios against its peers).

    .venv/bin/python benches/run_all.py            # all of them (about 15 minutes)
    .venv/bin/python benches/run_all.py --quick    # the short variants where a bench has one
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("asyncio increment, plait vs detangle", ["explore_bench.py"]),
    ("threads and tasks, plait vs frontrun and interleave-test", ["threads_bench.py"]),
    ("cooperative runs, plait vs pytest-asyncio-cooperative", ["cooperative_bench.py"]),
    ("concurrent calls, plait vs django-concurrent-test-helper", ["concurrent_bench.py"]),
    ("thread handoff cost", ["handoff_bench.py"]),
    ("where the time of one execution goes", ["profile_bench.py"]),
    ("plait's Lock and RLock outside explorations, vs the stdlib's", ["locks_bench.py"]),
    ("cost as the work grows: 2-5 actors x 1-4 steps", ["growth_bench.py"]),
    ("memory of long explorations", ["memory_bench.py"]),
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = 0
    for title, argv in BENCHES:
        print(f"\n######## {title} ########", flush=True)
        extra = ["--quick"] if quick and argv[0] == "cooperative_bench.py" else []
        done = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:], *extra])
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
