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
    assert "executor-1" in report and "writes Counter.value" in report
    assert "Conflicting accesses" in report and "Task-3 (bump) read it" in report
    replayed = plait.replay(caught.value.token)(thread_and_task())
    for _ in range(5):
        with pytest.raises(InterleavingFailure):
            replayed.explore()


def test_tasks_and_threads_share_one_numbered_timeline() -> None:
    """A test mixing asyncio.to_thread and tasks: one sequence, numbered 1..n, in which the
    executor thread's steps sit between the task steps they ran between."""
    import re

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(thread_and_task()).explore()
    report = caught.value.report
    assert "Threads (" not in report  # no second, separately numbered list
    body = report.split("(t is virtual time in seconds):\n", 1)[1].split("\n\n", 1)[0]
    steps = re.findall(r"^\s+(\d+)  t=\S+\s+(.+?): (.*)$", body, re.M)
    assert [int(n) for n, _, _ in steps] == list(range(1, len(steps) + 1))
    actors = [actor for _, actor, _ in steps]
    thread_at = [i for i, actor in enumerate(actors) if actor.startswith("executor-1")]
    task_at = [i for i, actor in enumerate(actors) if actor.startswith("Task-3 (bump)")]
    assert thread_at and len(task_at) == 2
    # the lost update: bump read, the thread ran whole, then bump wrote back
    assert task_at[0] < thread_at[0] and thread_at[-1] < task_at[1]
    write = next(n for n, actor, what in steps
                 if actor.startswith("executor-1") and what.startswith("writes Counter.value"))
    assert f"wrote it at tests/aio/aio_programs.py:37 (step {write})" in report
