"""The lost update with threads: no annotation needed, plait switches threads before each
shared access in your code (the `free-threaded` model). Under the `gil` model, which keeps
only the switches a GIL build can make, this two-line increment never races.
"""

from __future__ import annotations

import threading

import plait


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        v = self.value  # read
        self.value = v + 1  # write


def count_with_threads(n: int, lock: threading.Lock | None = None) -> int:
    counter = Counter()

    def work() -> None:
        if lock is None:
            counter.increment()
        else:
            with lock:
                counter.increment()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counter.value


@plait.explore()
def test_counter() -> None:
    assert count_with_threads(2) == 2


@plait.explore()
def test_counter_locked() -> None:
    assert count_with_threads(2, threading.Lock()) == 2
