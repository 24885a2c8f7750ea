"""A coroutine created and never awaited in a cooperative test fails that test (issue 10,
part 6), naming the coroutine and the line that made it; the tests running beside it are
not blamed, and one outside any test still warns as usual."""

from __future__ import annotations

TESTS = """
import asyncio
import pytest

async def herd(cat, direction):
    await asyncio.sleep(0.01)
    cat.append(direction)

@pytest.mark.plait_cooperative
async def test_forgets_await():
    cat = []
    await asyncio.sleep(0.05)       # a neighbour runs meanwhile
    herd(cat, "forward")
    await asyncio.sleep(0.05)

@pytest.mark.plait_cooperative
async def test_neighbour_awaits():
    cat = []
    await asyncio.sleep(0.02)
    await herd(cat, "forward")
    await asyncio.sleep(0.1)
    assert cat == ["forward"]

@pytest.mark.plait_cooperative
async def test_child_task_forgets():
    async def child():
        herd([], "back")
    await asyncio.create_task(child())

@pytest.mark.plait_cooperative
async def test_fails_on_its_own():
    herd([], "sideways")
    assert False, "its own failure"
"""


def test_never_awaited_coroutine_fails_its_cooperative_test(pytester, ini):
    pytester.makepyfile(test_cats=TESTS)
    result = pytester.runpytest("-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    assert ("NeverAwaited: coroutine 'herd' was never awaited, created at test_cats.py:12 in "
            'test_forgets_await: herd(cat, "forward")') in out
    assert ("NeverAwaited: coroutine 'herd' was never awaited, created at test_cats.py:26 in child: "
            'herd([], "back")') in out
    result.stdout.fnmatch_lines(["FAILED test_cats.py::test_forgets_await*"])
    result.stdout.fnmatch_lines(["FAILED test_cats.py::test_child_task_forgets*"])
    # the test's own failure stays its failure, and the neighbour is not blamed
    assert "FAILED test_cats.py::test_fails_on_its_own - AssertionError: its own failure" in out
    assert out.count("was never awaited") == 2
    assert "test_neighbour_awaits" not in out.split("short test summary info")[-1]
