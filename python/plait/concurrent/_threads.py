"""The threads backend: one fresh thread per call, all released by one barrier."""

from __future__ import annotations

import ctypes
import sys
import threading
import time
import traceback

from plait.concurrent._calls import Call, resolve
from plait.concurrent._errors import CallTimedOut
from plait.concurrent._result import CallResult


def run(calls: list[Call], timeout: float | None) -> list[CallResult]:
    functions = [resolve(call.target) for call in calls]  # fail before any thread starts
    barrier = threading.Barrier(len(calls) + 1)
    results: list[CallResult | None] = [None] * len(calls)
    lock = threading.Lock()  # guards `results`: a timed-out call must not be overwritten later

    def body(index: int) -> None:
        call, function = calls[index], functions[index]
        worker = f"thread {threading.get_ident()}"
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        started = time.time()
        try:
            value = function(*call.args, **call.kwargs)
            outcome = CallResult(index, "returned", value=value)
        except BaseException as exc:
            outcome = CallResult(index, "raised", exception=exc, traceback=traceback.format_exc())
        finally:
            _close_django_connections()
        outcome = _finish(outcome, started, worker)
        with lock:
            if results[index] is None:
                results[index] = outcome

    threads = [
        threading.Thread(target=body, args=(i,), name=f"plait-call-{i}", daemon=True)
        for i in range(len(calls))
    ]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except BaseException:
        barrier.abort()
        raise
    released = time.time()
    deadline = None if timeout is None else time.monotonic() + timeout
    for index, thread in enumerate(threads):
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            message = (
                f"call #{index} to {calls[index].name} did not finish within {timeout} s "
                "(its thread was interrupted; a thread blocked in C code stops when that returns)"
            )
            with lock:
                if results[index] is None:
                    results[index] = CallResult(
                        index,
                        "timed_out",
                        exception=CallTimedOut(message),
                        traceback=f"CallTimedOut: {message}\n",
                        started_at=released,
                        finished_at=time.time(),
                        worker=f"thread {thread.ident}",
                    )
            _interrupt(thread)
    return [r for r in results if r is not None]


def _finish(outcome: CallResult, started: float, worker: str) -> CallResult:
    return CallResult(
        outcome.index,
        outcome.status,
        value=outcome.value,
        exception=outcome.exception,
        traceback=outcome.traceback,
        started_at=started,
        finished_at=time.time(),
        worker=worker,
    )


def _interrupt(thread: threading.Thread) -> None:
    """Raise CallTimedOut inside the thread at its next bytecode (best effort, CPython only)."""
    if thread.ident is None or not hasattr(ctypes, "pythonapi"):
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(CallTimedOut)
    )


def _close_django_connections() -> None:
    """Each thread opened its own Django connections: close them so none leak past the test."""
    if "django.db" not in sys.modules:
        return
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

    if settings.configured:
        from django.db import connections  # type: ignore[import-untyped,unused-ignore]

        connections.close_all()
