"""Coroutines created by a test and never awaited fail that test, naming the coroutine and
the line that made it (instead of a RuntimeWarning in pytest's summary, or nothing).

CPython reports such a coroutine, when it is destroyed, through
``warnings._warn_unawaited_coroutine``; coroutine origin tracking (a per-thread setting)
gives the line that created it. Explored tests catch them for the whole execution
(:func:`watch`); cooperative tests run side by side on one loop, so each collects the ones
destroyed in its own context (:func:`per_context` and :func:`collect`): a coroutine dropped
by a test's code is destroyed in that test's task, or in a task it started.
"""

from __future__ import annotations

import contextlib
import linecache
import sys
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from plait._paths import short_path

_FOUND: ContextVar[list[str] | None] = ContextVar("plait_unawaited", default=None)


def describe(coro: Any) -> str:
    """One sentence about a coroutine that was never awaited."""
    origin = getattr(coro, "cr_origin", None)
    where = ""
    if origin:
        filename, line, function = origin[0]
        where = f", created at {short_path(filename)}:{line} in {function}"
        source = linecache.getline(filename, line).strip()
        if source:
            where += f": {source}"
    return (f"coroutine {getattr(coro, '__qualname__', coro)!r} was never awaited{where} "
            f"(its code never ran: add `await`, or wrap it in asyncio.create_task)")


def _install(record: Callable[[Any], None]) -> Any:
    previous = warnings._warn_unawaited_coroutine  # type: ignore[attr-defined]
    warnings._warn_unawaited_coroutine = record  # type: ignore[attr-defined]
    return previous


def _restore(previous: Any) -> None:
    warnings._warn_unawaited_coroutine = previous  # type: ignore[attr-defined]


def watch(found: list[str]) -> Any:
    """Every coroutine destroyed unawaited from now on is described into ``found`` (and
    origin tracking is on in this thread). Returns what :func:`unwatch` restores."""
    sys.set_coroutine_origin_tracking_depth(1)
    return _install(lambda coro: found.append(describe(coro)))


def unwatch(previous: Any) -> None:
    _restore(previous)
    sys.set_coroutine_origin_tracking_depth(0)


@contextlib.contextmanager
def per_context() -> Iterator[None]:
    """For the duration: a coroutine destroyed unawaited inside :func:`collect` is recorded
    there; elsewhere CPython warns as usual."""
    previous: Any = None

    def record(coro: Any) -> None:
        found = _FOUND.get()
        if found is None:
            previous(coro)
        else:
            found.append(describe(coro))

    previous = _install(record)
    try:
        yield
    finally:
        _restore(previous)


@contextlib.contextmanager
def collect(found: list[str]) -> Iterator[None]:
    """Collect into ``found`` the coroutines destroyed unawaited in this context (and in
    the tasks started from it) while the block runs."""
    token = _FOUND.set(found)
    try:
        yield
    finally:
        _FOUND.reset(token)
