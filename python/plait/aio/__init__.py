"""asyncio under plait's control: the controlled loop and its default-order runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from plait.aio.loop import Chooser, PlaitLoop

T = TypeVar("T")

__all__ = ["Chooser", "DefaultChooser", "PlaitLoop", "run"]


class DefaultChooser(Chooser):
    """Always the default choice: the loop then runs exactly like the stdlib loop."""

    def choose_actor(self, runnable: list[int], current: int | None) -> int:
        return current if current in runnable else runnable[0]

    def choose(self, n: int) -> int:
        return 0


def run(main: Callable[[], Coroutine[Any, Any, T]], chooser: Chooser | None = None,
        *, timer_slack: float = 0.1) -> T:
    """Run ``main()`` on a controlled loop (default order unless a chooser is given)."""
    loop = PlaitLoop(chooser or DefaultChooser(), timer_slack=timer_slack)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        try:
            return runner.run(main())
        finally:
            loop.plait_free = True
