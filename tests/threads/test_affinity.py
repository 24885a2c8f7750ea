"""A thread exploration runs its threads on one CPU and gives the caller its CPUs back."""

from __future__ import annotations

import os
import threading

import plait


def test_threads_share_one_cpu_and_the_mask_comes_back() -> None:
    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []

    @plait.explore(strategy="dfs", max_executions=3, races="ignore")
    def body() -> None:
        def work() -> None:
            seen.append(os.sched_getaffinity(0))

        t = threading.Thread(target=work)
        t.start()
        t.join()

    body()
    assert seen and all(len(mask) == 1 and mask <= before for mask in seen)
    assert os.sched_getaffinity(0) == before
