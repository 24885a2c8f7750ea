"""Run a function N times at once, in threads or warm worker processes, and report each call.

    results = plait.call_concurrently(5, reserve_seat, seat_id=7)
    assert sum(r.ok and r.value for r in results) == 1

All calls of a batch wait at one barrier and are released together, so they really
overlap; each result says when its call started (``results.start_spread`` is the spread).
Results come back in call order. Nothing is silently ``None``: a call that raised, timed
out, or whose worker died is a result with ``ok`` false and an ``exception``.
See docs/concurrent.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from plait.concurrent._calls import Call, normalize
from plait.concurrent._django import SettingsNotSent
from plait.concurrent._errors import (
    CallTimedOut,
    ConcurrentCallError,
    DatabaseNotVisible,
    RemoteError,
    RemoteTraceback,
    WorkerDied,
)
from plait.concurrent._result import CallResult, CallResults

__all__ = [
    "CallResult",
    "CallResults",
    "CallTimedOut",
    "ConcurrentCallError",
    "DatabaseNotVisible",
    "RemoteError",
    "RemoteTraceback",
    "SettingsNotSent",
    "WorkerDied",
    "call_concurrently",
    "make_concurrent_calls",
    "shutdown_workers",
]

Backend = Literal["threads", "processes"]
BACKENDS = ("threads", "processes")
DEFAULT_TIMEOUT = 60.0


def call_concurrently(
    times: int,
    function: Callable[..., Any] | str,
    /,
    *args: Any,
    backend: Backend = "threads",
    timeout: float | None = DEFAULT_TIMEOUT,
    raise_exceptions: bool = False,
    **kwargs: Any,
) -> CallResults:
    """Call ``function(*args, **kwargs)`` ``times`` times at once; return the results in order.

    ``function`` is a callable or a ``"package.module:function"`` string. ``backend`` is
    ``"threads"`` (default) or ``"processes"`` (a warm pool of worker interpreters).
    ``timeout`` is in seconds per batch (``None``: wait forever). With ``raise_exceptions``,
    any failed call makes the whole batch raise an ``ExceptionGroup`` instead. To pass a
    keyword argument named like one of these options, use :func:`make_concurrent_calls`.
    """
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError(f"times must be a positive int, got {times!r}")
    calls = [normalize((function, args, kwargs), 0)] * times
    return _run(calls, backend, timeout, raise_exceptions)


def make_concurrent_calls(
    *calls: Any,
    backend: Backend = "threads",
    timeout: float | None = DEFAULT_TIMEOUT,
    raise_exceptions: bool = False,
) -> CallResults:
    """Make several different calls at once; return the results in the order given.

    Each call is ``(function, args, kwargs)``, ``(function, kwargs)``, ``(function, args)``,
    or just a function; a function may be a ``"package.module:function"`` string.
    """
    if not calls:
        raise ValueError("make_concurrent_calls needs at least one call")
    return _run([normalize(c, i) for i, c in enumerate(calls)], backend, timeout, raise_exceptions)


def shutdown_workers() -> None:
    """Stop the warm worker processes now; the next batch starts new ones."""
    from plait.concurrent import _processes

    _processes.shutdown()


def _run(
    calls: list[Call], backend: str, timeout: float | None, raise_exceptions: bool
) -> CallResults:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    from plait.concurrent import _django

    _django.check_visible(backend)
    if backend == "threads":
        from plait.concurrent import _threads

        results = CallResults(_threads.run(calls, timeout))
    else:
        from plait.concurrent import _processes

        results = CallResults(_processes.pool().run(calls, timeout))
    if raise_exceptions and results.exceptions:
        failed = [r for r in results if r.exception is not None]
        for r in failed:
            note = f"(call #{r.index} to {calls[r.index].name}, {r.status})"
            if note not in getattr(r.exception, "__notes__", ()):
                r.exception.add_note(note)  # type: ignore[union-attr]
        raise BaseExceptionGroup(
            f"{len(failed)} of {len(results)} concurrent calls failed", results.exceptions
        )
    return results
