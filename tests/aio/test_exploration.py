"""Exploring asyncio programs: partial-order reduction counts, and tasks racing threads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import plait
from plait.errors import InterleavingFailure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aio_programs import task_counter, thread_and_task


@pytest.mark.parametrize(("tasks", "traces", "all_orders"), [(2, 4, 6), (3, 36, 90),
                                                             (4, 576, 2520)])
def test_dpor_one_execution_per_trace_dfs_all_orders(tasks: int, traces: int,
                                                     all_orders: int) -> None:
    dpor = plait.explore(strategy="dpor", stop_on_first=False, max_executions=10_000,
                         races="ignore")(
        task_counter(tasks, check=False)).explore()
    assert dpor.exhausted and dpor.executions == traces and dpor.redundant == 0
    if tasks < 4:
        dfs = plait.explore(strategy="dfs", stop_on_first=False, max_executions=10_000,
                            races="ignore")(
            task_counter(tasks, check=False)).explore()
        assert dfs.exhausted and dfs.executions == all_orders


def test_dpor_finds_the_task_lost_update() -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(task_counter(2)).explore()
    assert caught.value.result.executions <= 4
    assert "(bump)'s update was lost." in caught.value.report


def test_executor_thread_races_a_task() -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(thread_and_task()).explore()
    report = caught.value.report
    assert "Threads (the event loop's thread is one of them)" in report
    assert "executor-1" in report and "writes Counter.value" in report
    assert "Conflicting accesses" in report and "Task-3 (bump) read it" in report
    replayed = plait.replay(caught.value.token)(thread_and_task())
    for _ in range(5):
        with pytest.raises(InterleavingFailure):
            replayed.explore()
