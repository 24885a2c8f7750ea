"""Threads under plait's control: one execution of a threaded (sync) test body."""

from __future__ import annotations

import gc
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

from plait.errors import NeverAwaited, OwnEventLoop
from plait.threads import primitives, watchdog
from plait.threads.scheduler import ExecutionOver, Scheduler, ThreadStep, VirtualClock
from plait.threads.tracing import Selection, Tracer
from plait.unawaited import unwatch as unawaited_unwatch
from plait.unawaited import watch as unawaited_watch

__all__ = ["ThreadRun", "make_tracer", "run_threaded"]


class ThreadRun:
    """What one threaded execution left behind: its failure, steps and accesses."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.steps: list[ThreadStep] | None = None
        self.sched: Scheduler | None = None


_COLLECTIONS = [0]
FULL_COLLECTION_EVERY = 32


def _collect() -> None:
    """Collect the garbage of the execution that just ended (between executions only).

    With collection disabled during the execution, everything it allocated is in the
    youngest generation: collecting that one finds the cycles it left. A full collection
    (every FULL_COLLECTION_EVERY executions) also reaches garbage that had survived into an
    older generation; memory stays bounded and a collection costs what the execution made,
    not what the process holds."""
    _COLLECTIONS[0] += 1
    if _COLLECTIONS[0] % FULL_COLLECTION_EVERY:
        gc.collect(0)
    else:
        gc.collect()


def make_tracer(options: Any, *, asyncio_internals: bool = False) -> Tracer:
    include = list(options.trace_modules)
    if asyncio_internals:
        # asyncio's locks and queues are Python code: tracing them gives task steps the
        # footprint of their synchronization, which partial-order reduction needs.
        include += ["asyncio.locks", "asyncio.queues", "asyncio.mixins"]
    selection = Selection(include, options.skip_modules)
    # The scheduler is set per execution; the tracer (and its per-code tables) lives
    # for the whole exploration so instrumentation is paid once.
    return Tracer(None, granularity=options.granularity,  # type: ignore[arg-type]
                  atomicity=options.atomicity, selection=selection)


def run_threaded(chooser: Any, seed: int, body: Callable[[], Any], tracer: Tracer,
                 *, record: bool = False, hang_timeout: float = 10.0,
                 record_footprints: bool = True, event_loop: bool = False,
                 restore_random: bool = True) -> ThreadRun:
    """Run ``body`` in the calling thread as the first actor; threads it starts are actors.

    ``restore_random``: put the caller's `random` state back afterwards (an exploration
    does it once for all its executions instead)."""
    # 3.11's sys.settrace calls its function at every Python call: the body's thread is
    # traced while the body runs, not while plait sets the execution up and tears it down.
    paused = getattr(tracer, "thread_trace_function", lambda: None)()
    if paused is not None and sys.gettrace() == paused:
        sys.settrace(None)
    else:
        paused = None
    run = ThreadRun()
    steps: list[ThreadStep] | None = [] if record else None
    sched = Scheduler(chooser, VirtualClock(), trace=steps, hang_timeout=hang_timeout,
                      record_footprints=record_footprints)
    run.sched = sched
    run.steps = steps
    saved = random.getstate() if restore_random else None
    random.seed(seed)
    # Garbage collection runs weakref callbacks and finalizers (ThreadPoolExecutor puts to
    # its queue from one) at moments plait does not choose: collect between executions only.
    collecting = gc.isenabled()
    gc.disable()
    # An actor unwound by the end of the execution may run a weakref callback or finalizer
    # (ThreadPoolExecutor has one) that meets ExecutionOver: that is plait's, not the test's.
    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, ExecutionOver):
            previous_hook(unraisable)

    sys.unraisablehook = hook
    unawaited: list[str] = []
    previous_warn = unawaited_watch(unawaited)
    first = sched.adopt_current("event loop" if event_loop else threading.current_thread().name)
    first.no_points = event_loop  # task steps are the loop's scheduling points
    tracer.sched = sched
    sched.tracer = tracer  # type: ignore[attr-defined]
    guard = watchdog.watching(sched)
    guard.__enter__()
    primitives.install(sched)
    try:
        try:
            if paused is not None:
                sys.settrace(paused)
            try:
                body()
            finally:
                if paused is not None:
                    sys.settrace(None)
            sched.finish_body()
        except ExecutionOver:
            pass
        except Exception as exc:  # the test's own failure
            run.failure = exc
            if isinstance(exc, OwnEventLoop):  # free the test's frames, and the coroutine
                exc.__traceback__ = None       # it never ran, while they are watched
        finally:
            try:
                sched.shutdown()
            finally:
                guard.__exit__()
    finally:
        primitives.uninstall()
        if saved is not None:
            random.setstate(saved)
        _collect()
        if collecting:
            gc.enable()
        sys.unraisablehook = previous_hook
        unawaited_unwatch(previous_warn)
        if paused is not None:
            sys.settrace(paused)
    if sched.engine_error is not None:
        raise sched.engine_error
    for error in (run.failure, *(e for _, e in sched.errors)):
        if isinstance(error, OwnEventLoop):
            raise error  # a misconfigured test, not an interleaving's failure
    if unawaited and (run.failure is None or isinstance(run.failure, OwnEventLoop)):
        run.failure = NeverAwaited("; ".join(unawaited))
    if sched.hung is not None:
        run.failure = sched.hung
    elif sched.deadlock is not None and run.failure is None:
        run.failure = sched.deadlock
    elif run.failure is None and sched.errors:
        actor, error = sched.errors[0]
        error.add_note(f"(raised in {actor.name}, a thread started by the test)")
        run.failure = error
    return run
