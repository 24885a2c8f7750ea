"""Programs on which dpor once missed a failing schedule that dfs or random found, or
answered differently from one run to the next. Each is explored with dpor and must fail
(the bug is real), at the same execution on every run (the exploration is deterministic)."""

from __future__ import annotations

import threading

import pytest

import plait
from plait.errors import InterleavingFailure


def condition_wait_under_if() -> None:
    """Two consumers wait under `if`, not `while`; the body produces two items. A consumer
    woken by a notify can find its item taken by the other one, and pops an empty list."""
    items: list[int] = []
    cv = threading.Condition()

    def consumer() -> None:
        with cv:
            if not items:
                cv.wait()
            items.pop()

    threads = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(2):
        with cv:
            items.append(i)
            cv.notify()
    for t in threads:
        t.join()


def _failing_execution(body, **options) -> int:
    test = plait.explore(strategy="dpor", races="ignore", shrink=False, **options)(body)
    with pytest.raises(InterleavingFailure) as caught:
        test.explore()
    assert caught.value.result is not None
    at = caught.value.result.failed_at
    assert at is not None
    return at


def test_condition_wait_under_if_is_found_the_same_way_every_run() -> None:
    # Lock footprints were keyed by id(): a Condition's waiter locks, made anew in every
    # execution, got other keys in the next one, so sleep sets kept asleep steps that
    # conflicted. dpor said "24 executions (23 of them redundant), exhausted", or found the
    # bug, depending on where the allocator put the locks.
    first = _failing_execution(condition_wait_under_if)
    assert [_failing_execution(condition_wait_under_if) for _ in range(2)] == [first, first]
