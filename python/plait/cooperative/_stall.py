"""A cooperative run in which nothing can ever happen again: fail its tests now.

Tests that wait on one another (two locks taken in opposite orders, an event nobody
will set) would otherwise wait for their whole timeout, ten minutes by default, long
after the rest of the suite has finished. The loop can tell when it is stuck for good:
nothing is ready to run, no timer is pending (but the tests' own deadlines), no file
descriptor is watched (but the loop's wake-up pipe), no signal handler is installed,
and no thread that could wake it is running (only idle workers of the default
executor). When that holds at two checks a second apart, every test still in a phase
fails with where it is suspended, and their teardowns release what they held.

The check reads the private queues of asyncio's own selector loop; on any other loop
(uvloop, a custom policy) it stays off and only the timeout applies.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

INTERVAL = 1.0


class StallWatch:
    """Calls ``on_stall`` when the loop is stuck for good (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadlines: dict[Any, Any],
                 on_stall: Callable[[], None]) -> None:
        self._loop: Any = loop
        self._deadlines = deadlines
        self._on_stall = on_stall
        self._threads = set(threading.enumerate())
        self._suspect = False
        self._handle: asyncio.TimerHandle | None = None
        usable = all(
            hasattr(loop, name) for name in ("_ready", "_scheduled", "_selector", "_signal_handlers")
        )
        if usable:
            self._handle = loop.call_later(INTERVAL, self._check)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        stuck = self._stuck()
        if stuck and self._suspect:
            self._suspect = False
            self._on_stall()
        else:
            self._suspect = stuck
        self._handle = self._loop.call_later(INTERVAL, self._check)

    def _stuck(self) -> bool:
        loop = self._loop
        if not self._deadlines or loop._ready or loop._signal_handlers:
            return False
        ours = {id(d._handle) for d in self._deadlines.values() if d._handle is not None}
        for handle in loop._scheduled:
            if not handle.cancelled() and id(handle) not in ours:
                return False
        try:
            watched = len(loop._selector.get_map())
        except Exception:
            return False
        if watched > 1:  # more than the loop's own wake-up pipe
            return False
        return not self._threads_could_wake()

    def _threads_could_wake(self) -> bool:
        idle = _idle_default_workers(self._loop)
        if idle is None:
            return True
        for thread in threading.enumerate():
            if thread in self._threads or thread is threading.current_thread():
                continue
            if thread in idle:
                continue
            return True
        return False


def _idle_default_workers(loop: Any) -> set[threading.Thread] | None:
    """The default executor's threads if they are all idle; None if one may be busy."""
    executor = getattr(loop, "_default_executor", None)
    if executor is None:
        return set()
    threads = set(getattr(executor, "_threads", ()))
    queue = getattr(executor, "_work_queue", None)
    idle = getattr(getattr(executor, "_idle_semaphore", None), "_value", None)
    if queue is None or idle is None or not queue.empty() or idle < len(threads):
        return None
    return threads
