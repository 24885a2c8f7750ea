"""Several worker processes for one exploration: --plait-workers / workers=."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import plait
from plait.errors import ConfigError, InterleavingFailure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "threads"))
from programs import counter_body


def _failure(**options: object) -> InterleavingFailure:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(shrink=False, **options)(counter_body(2)).explore()  # type: ignore[arg-type]
    return caught.value


def test_seed_split_finds_the_same_first_failure_as_one_worker() -> None:
    one = _failure(strategy="random", seed=7, max_executions=400)
    two = _failure(strategy="random", seed=7, max_executions=400, workers=2)
    assert two.token == one.token
    assert two.result is not None and one.result is not None
    assert two.result.failed_at == one.result.failed_at
    # the token replays in one process, like any other
    with pytest.raises(InterleavingFailure) as again:
        plait.replay(two.token)(counter_body(2)).explore()
    assert str(again.value.__cause__) == str(one.__cause__)


def test_pct_split_finds_a_failure_that_replays_in_one_process() -> None:
    # pct learns its step count per worker, so the schedules differ from one worker's
    two = _failure(strategy="pct", seed=7, max_executions=400, workers=2)
    with pytest.raises(InterleavingFailure) as again:
        plait.replay(two.token)(counter_body(2)).explore()
    assert "lost" in again.value.report


def test_seed_split_runs_the_whole_budget_across_workers() -> None:
    result = plait.explore(strategy="random", max_executions=101, workers=3, races="ignore")(
        counter_body(3, check=False)).explore()
    assert result.executions == 101 and result.failure is None
    assert "executions per worker [34, 34, 33]" in " ".join(result.notes)


def test_dpor_with_two_workers_exhausts_the_four_thread_counter_in_576() -> None:
    result = plait.explore(strategy="dpor", stop_on_first=False, max_executions=10_000,
                           races="ignore", workers=2)(counter_body(4, check=False)).explore()
    assert result.exhausted
    assert result.distinct == 576
    if sys.version_info < (3, 12):
        assert result.executions == 576


def test_asyncio_body_with_workers() -> None:
    state = {"v": 0}

    async def bump() -> None:
        v = state["v"]
        await asyncio.sleep(0)
        state["v"] = v + 1

    @plait.explore(strategy="random", max_executions=60, workers=2, shrink=False)
    async def body() -> None:
        state["v"] = 0
        await asyncio.gather(bump(), bump())
        assert state["v"] == 2

    with pytest.raises(InterleavingFailure) as caught:
        body.explore()
    assert "plait1:" in caught.value.token


@pytest.mark.parametrize("bad", [0, -1, "two"])
def test_bad_worker_counts_name_the_option(bad: object) -> None:
    with pytest.raises(ConfigError, match="workers"):
        plait.explore(workers=bad)(counter_body(2))  # type: ignore[arg-type]


def test_command_line_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_w='''
import threading
import plait

class Counter:
    value = 0

@plait.explore(strategy="random", max_executions=200, shrink=False)
def test_lost_update():
    c = Counter()
    def inc():
        v = c.value
        c.value = v + 1
    ts = [threading.Thread(target=inc) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.value == 2
''')
    result = pytester.runpytest_subprocess("--plait-workers=2", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*2 workers split the random seeds*", "*plait1:*"])
    bad = pytester.runpytest_subprocess("--plait-workers=many")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*plait option workers must be a whole number*"])
