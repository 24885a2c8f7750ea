"""Every token replays, every time (issue 10, part 5): programs with a ThreadPoolExecutor,
queue.Queue and timers fail the same way on each of 10 replays of their token. (The
executor's shutdown joined its workers in the order of a set of threads, hashed by address:
that order leaked from one execution to the next and broke replays.)"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

import plait
from plait.errors import InterleavingFailure


class Tally:
    def __init__(self) -> None:
        self.n = 0


def pool_jobs() -> None:
    tally = Tally()

    def work() -> None:
        value = tally.n
        tally.n = value + 1

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(work) for _ in range(3)]
    for future in futures:
        future.result()
    assert tally.n == 3


def queue_and_timer() -> None:
    tally = Tally()
    jobs: queue.Queue[int | None] = queue.Queue()

    def work() -> None:
        while (item := jobs.get()) is not None:
            value = tally.n
            tally.n = value + item

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    jobs.put(1)
    jobs.put(1)
    timer = threading.Timer(0.5, lambda: [jobs.put(None) for _ in workers])
    timer.start()
    timer.join()
    for worker in workers:
        worker.join()
    assert tally.n == 2


@pytest.mark.parametrize("body", [pool_jobs, queue_and_timer], ids=["executor", "queue-timer"])
def test_token_replays_ten_times_out_of_ten(body: Callable[[], None]) -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(body).explore()
    assert "diverged" not in caught.value.report and "did not fail the same way" not in \
        caught.value.report
    token = caught.value.token
    failures = []
    for _ in range(10):
        with pytest.raises(InterleavingFailure) as again:
            plait.replay(token)(body).explore()
        failures.append(type(again.value.__cause__).__name__)
    assert failures == ["AssertionError"] * 10
