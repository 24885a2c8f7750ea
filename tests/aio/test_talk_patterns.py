"""The talk's patterns (issue 10, part 6): a coroutine never awaited fails its explored
test, naming it and the line that made it; a plain ``def`` test running its own event loop
gets a clear error, not a hang."""

from __future__ import annotations

import asyncio

import pytest

import plait
from plait.errors import InterleavingFailure, NeverAwaited, OwnEventLoop


async def herd(cat: str, direction: str) -> str:
    await asyncio.sleep(0.01)
    return f"{cat} {direction}"


def test_never_awaited_coroutine_fails_the_test_naming_it() -> None:
    @plait.explore()
    async def test_forgets_await() -> None:
        herd("cat", "forward")  # type: ignore[unused-coroutine]  # the bug: no await

    with pytest.raises(InterleavingFailure) as caught:
        test_forgets_await.explore()
    assert isinstance(caught.value.__cause__, NeverAwaited)
    report = caught.value.report
    assert "coroutine 'herd' was never awaited" in report
    assert 'test_talk_patterns.py:23 in test_forgets_await: herd("cat", "forward")' in report


def test_never_awaited_in_a_thread_test_fails_too() -> None:
    @plait.explore()
    def test_sync_forgets_await() -> None:
        herd("dog", "back")  # type: ignore[unused-coroutine]

    with pytest.raises(InterleavingFailure) as caught:
        test_sync_forgets_await.explore()
    assert isinstance(caught.value.__cause__, NeverAwaited)


def test_awaited_coroutines_pass() -> None:
    @plait.explore()
    async def test_awaits() -> None:
        assert await herd("cat", "forward") == "cat forward"
        task = asyncio.create_task(herd("cat", "back"))
        assert await task == "cat back"

    assert test_awaits.explore().failure is None


def test_sync_test_with_its_own_loop_gets_a_clear_error() -> None:
    @plait.explore(hang_timeout=3)
    def test_own_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(herd("cat", "forward"))
        finally:
            loop.close()

    @plait.explore(hang_timeout=3)
    def test_asyncio_run() -> None:
        asyncio.run(herd("cat", "forward"))

    for test, line in ((test_own_loop, 56), (test_asyncio_run, 64)):
        with pytest.raises(OwnEventLoop, match=rf"test_talk_patterns.py:{line} .*Make the test `async def`"):
            test.explore()
    # outside explorations, loops are made as usual
    assert asyncio.run(herd("cat", "home")) == "cat home"
