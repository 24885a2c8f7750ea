"""Size of the HTML timeline (--plait-html) for failures of about 50, 200 and 300 steps, beside
the text report of the same failure, and its bytes per step against the smallest one's (1.0x
means linear). Run: .venv/bin/python benches/html_bench.py"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

import plait


class Counter:
    def __init__(self) -> None:
        self.value = 0


def program(rounds: int):  # type: ignore[no-untyped-def]
    def body() -> None:
        counter = Counter()

        def bump() -> None:
            for _ in range(rounds):
                v = counter.value
                counter.value = v + 1

        threads = [threading.Thread(target=bump, name=f"adder-{i}") for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter.value == 2 * rounds

    return body


def main() -> None:
    first_rate: float | None = None
    with tempfile.TemporaryDirectory() as out:
        for rounds in (5, 25, 40):
            started = time.perf_counter()
            try:
                plait.explore(html=out, shrink=False)(program(rounds)).explore()
            except plait.InterleavingFailure as failure:
                (path,) = failure.result.html[-1:]
                steps = sum(1 for line in failure.report.splitlines()
                            if line[:6].strip().isdigit() and "  t=" in line)
                size = os.path.getsize(path)
                text = len(failure.report.encode())
                rate = size / max(steps, 1)
                first_rate = first_rate or rate
                print(f"{rounds:>3} rounds: {steps:>4} steps, HTML {size / 1024:7.1f} KiB "
                      f"({rate:.0f} B/step, {rate / first_rate:.2f}x the first's), "
                      f"text report {text / 1024:6.1f} KiB, "
                      f"HTML/text {size / text:.1f}x, {time.perf_counter() - started:.2f}s")
            else:
                print(f"{rounds} rounds: no failure found", file=sys.stderr)


if __name__ == "__main__":
    main()
