"""asyncio programs explored by the tests (a real module: plait traces code from files)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Counter:
    def __init__(self) -> None:
        self.value = 0


async def bump(counter: Counter) -> None:
    v = counter.value
    await asyncio.sleep(0)
    counter.value = v + 1


def task_counter(n: int, *, check: bool = True) -> Callable[[], Coroutine[Any, Any, None]]:
    async def body() -> None:
        counter = Counter()
        await asyncio.gather(*(bump(counter) for _ in range(n)))
        if check:
            assert counter.value == n

    return body


def thread_and_task() -> Callable[[], Coroutine[Any, Any, None]]:
    async def body() -> None:
        counter = Counter()

        def in_thread() -> None:
            v = counter.value
            counter.value = v + 1

        await asyncio.gather(asyncio.to_thread(in_thread), bump(counter))
        assert counter.value == 2

    return body
