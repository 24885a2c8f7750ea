"""The time budget of a cooperative test, and where a test that ran out of it was waiting.

A test's setup and call share one budget; its teardown gets another of the same length.
The budget is plait's (``--plait-cooperative-timeout``, the marker's ``timeout=``) or
pytest-timeout's (``--timeout``, ``@pytest.mark.timeout``), whichever is shorter. When
it runs out, the test's task is cancelled, as ``asyncio.timeout`` would do, but first
its stack is taken: the report says on which line the test was suspended.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from typing import Any

import pytest

from plait.cooperative._settings import MARKER, PYTEST_TIMEOUT_KEY, Settings, marker_kwarg

_HERE = os.path.dirname(os.path.abspath(__file__))


def budget(item: Any, settings: Settings, func_only: bool = False) -> tuple[float, str]:
    """(seconds, where they were set) for ``item``; 0 means no limit.

    ``func_only``: the budget pytest-timeout gives the test function alone
    (``timeout_func_only``), known only once its call hook has run.
    """
    seconds = settings.timeout
    source = (
        f"--plait-cooperative-timeout / ini plait_cooperative_timeout, or @pytest.mark.{MARKER}(timeout=...)"
    )
    seconds = float(marker_kwarg(item, "timeout", seconds))
    if seconds <= 0:
        source = ""
    theirs = item.stash.get(PYTEST_TIMEOUT_KEY, None)
    if theirs is not None and bool(theirs.func_only) == func_only:
        other = float(theirs.timeout or 0)
        if other > 0 and (seconds <= 0 or other < seconds):
            seconds, source = other, "pytest-timeout: --timeout / @pytest.mark.timeout"
    elif func_only:
        return 0.0, ""
    return seconds, source


class Deadline:
    """Cancels ``task`` at ``when`` (loop time), keeping where it was suspended."""

    def __init__(self, task: asyncio.Task[Any], when: float | None) -> None:
        self.task = task
        self.fired = False
        self.stalled = False  # fired by the stall watch (_stall.py), not by the clock
        self.stack = ""
        self._cancelling = task.cancelling()
        self._handle = asyncio.get_running_loop().call_at(when, self._fire) if when is not None else None

    def stall(self) -> None:
        """Nothing can wake the test: end its wait now."""
        if not self.fired:
            self.stalled = True
            self._fire()

    def _fire(self) -> None:
        if self.fired:
            return
        self.fired = True
        self.stack = suspended_at(self.task)
        self.task.cancel()

    def close(self, raised: BaseException | None) -> bool:
        """Stop the timer; whether ``raised`` is the cancellation of this deadline."""
        if self._handle is not None:
            self._handle.cancel()
        if not self.fired:
            return False
        left = self.task.uncancel()
        return isinstance(raised, asyncio.CancelledError) and left <= self._cancelling


def suspended_at(task: asyncio.Task[Any]) -> str:
    """The frames ``task`` is suspended in, most recent call last, plait's own left out."""
    frames = []
    awaiting: Any = task.get_coro()
    while awaiting is not None:  # the chain of awaits, from the task's coroutine down
        frame = next(
            (getattr(awaiting, a) for a in ("cr_frame", "ag_frame", "gi_frame") if hasattr(awaiting, a)),
            None,
        )
        if frame is None:
            break
        if not os.path.abspath(frame.f_code.co_filename).startswith(_HERE):
            frames.append((frame, frame.f_lineno))
        awaiting = next(
            (getattr(awaiting, a) for a in ("cr_await", "ag_await", "gi_yieldfrom") if hasattr(awaiting, a)),
            None,
        )
    if not frames:
        return ""
    return "".join(traceback.StackSummary.extract(iter(frames)).format())


STALLED = (
    "Stalled: every running cooperative test was waiting and nothing could wake any of "
    "them (no timer, I/O, signal or thread pending): a deadlock between tests, or a wait "
    "for something that never comes"
)


def timeout_excinfo(
    when: str, seconds: float, source: str, stack: str, stalled: bool = False
) -> pytest.ExceptionInfo[BaseException]:
    what = "test" if when == "call" else f"{when} of the test"
    if stalled:
        message = f"{STALLED} (in the {what})"
    else:
        message = f"Timeout: the {what} took longer than the cooperative timeout of {seconds:g}s ({source})"
    if stack:
        message += f"\nIt was suspended at (most recent call last):\n{stack.rstrip()}"
    try:
        raise pytest.fail.Exception(message, pytrace=False)
    except pytest.fail.Exception:
        return pytest.ExceptionInfo.from_current()
