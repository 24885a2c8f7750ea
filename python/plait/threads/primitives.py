"""The patches that put an execution's scheduler under ``threading``, ``queue`` and ``time``.

The modeled primitives are plait's Lock and RLock (see :mod:`plait.threads.locks`):
``threading``'s Condition, Event, Semaphore, BoundedSemaphore, Barrier and ``queue``'s
classes are built on them, so every primitive is modeled through the stdlib's own code.
During an execution this module also makes thread start and join, ``time.sleep`` and the
clocks the scheduler's, and ``queue.SimpleQueue`` the pure-Python one.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import queue
import sys
import threading
import time
from typing import Any

from plait._paths import user_frame
from plait.errors import OwnEventLoop
from plait.threads import locks
from plait.threads.locks import Lock, RLock  # noqa: F401 (the modeled types, re-exported)
from plait.threads.scheduler import (
    ExecutionOver,
    Scheduler,
    ThreadStep,
    VirtualClock,
    _allocate,
)

ACTIVE: Scheduler | None = None


def _untraced(hook: Any) -> Any:
    """A hook user code calls, run with 3.11's trace off: each Python call it makes
    (plait's scheduler, threading's bootstrap) would otherwise be a call of the trace
    function, and none of them is the user's code."""

    @functools.wraps(hook)
    def untraced(*args: Any, **kwargs: Any) -> Any:
        sched = ACTIVE
        function = None if sched is None else sched.tracefn
        if function is None or sys.gettrace() != function:
            return hook(*args, **kwargs)
        sys.settrace(None)
        try:
            return hook(*args, **kwargs)
        finally:
            sys.settrace(function)

    return untraced


# -- patching -------------------------------------------------------------------------------
_ORIGINAL: dict[tuple[Any, str], Any] = {}


def _patch(owner: Any, name: str, value: Any) -> None:
    _ORIGINAL.setdefault((owner, name), getattr(owner, name))
    setattr(owner, name, value)


class _RealEvent:
    """A one-shot real event (threading.Event would pick up the patched Lock)."""

    def __init__(self) -> None:
        self._gate = _allocate()
        self._gate.acquire()
        self._flag = False

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._gate.release()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        if self._gate.acquire(True, -1 if timeout is None else timeout):
            self._gate.release()
        return self._flag

    def clear(self) -> None:  # pragma: no cover - Thread never clears it
        pass

    def _at_fork_reinit(self) -> None:
        """In a forked child the stdlib resets every thread's locks (plait.workers forks)."""
        self._gate = _allocate()
        if not self._flag:
            self._gate.acquire()


_orig_start = threading.Thread.start
_orig_init = threading.Thread.__init__


def _thread_hash(self: threading.Thread) -> int:
    """A thread made during an execution hashes by its creation order, not its address:
    ``ThreadPoolExecutor.shutdown`` joins its workers in the order of a *set* of threads,
    which by address changed from one execution to the next (and broke replays)."""
    value = self.__dict__.get("_plait_hash")
    return object.__hash__(self) if value is None else value


def _make_init(numbers: Any) -> Any:
    @_untraced
    def init(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
        if ACTIVE is not None and ACTIVE.me() is not None:
            self._plait_hash = numbers()  # type: ignore[attr-defined] # before anything hashes it
        _orig_init(self, *args, **kwargs)

    return init
_orig_join = threading.Thread.join
_real_sleep = time.sleep
_real_monotonic = time.monotonic
_real_time = time.time


@_untraced
def _start(self: threading.Thread) -> None:
    sched = ACTIVE
    if sched is None or sched.over or sched.me() is None:
        return _orig_start(self)
    actor = sched.add_actor(self.name, self)
    if sched.trace is not None:  # a step of the report (not a scheduling point: dpor's counts)
        me = sched.me()
        where = user_frame(2)
        if me is not None:
            sched.trace.append(ThreadStep(me.id, me.name, f"starts {self.name}", where,
                                          sched.clock.now))
    self._plait_actor = actor  # type: ignore[attr-defined]
    self._plait_sched = sched  # type: ignore[attr-defined]
    self._daemonic = True  # type: ignore[attr-defined] # a stuck actor never holds the run open
    # The real start() waits on `_started` until the new thread has bootstrapped; that
    # handshake is stdlib bookkeeping, so it uses a real Event and is not explored. The new
    # thread becomes a running actor only when it reaches run() (see run_under_plait).
    self._started = _RealEvent()  # type: ignore[attr-defined]
    run = self.run

    def run_under_plait() -> None:
        try:
            sched.enter(actor)
        except ExecutionOver:
            actor.finished = True
            return
        tracer = getattr(sched, "tracer", None)
        if tracer is not None:
            tracer.enable_in_this_thread()
        try:
            run()
        except ExecutionOver:
            pass
        except BaseException as exc:
            sched.errors.append((actor, exc))
        finally:
            if sched.tracefn is not None:
                sys.settrace(None)  # the thread's user code is over (see _untraced)
            try:
                sched.exit(actor)
            except ExecutionOver:
                pass
            except BaseException as exc:  # never leave the others waiting
                sched.engine_error = sched.engine_error or exc  # type: ignore[assignment]
                sched._end_all()

    self.run = run_under_plait  # type: ignore[method-assign]
    # No scheduling point before the OS thread exists: the wait for `_started` inside the
    # real start() is where the new actor can first be chosen.
    return _orig_start(self)


@_untraced
def _join(self: threading.Thread, timeout: float | None = None) -> None:
    actor = getattr(self, "_plait_actor", None)
    sched = ACTIVE
    if actor is None or sched is None or sched.over or sched.me() is None:
        return _orig_join(self, timeout)
    where = user_frame() if sched.trace is not None else None
    sched.point(f"joins {self.name}", None, where)
    if not sched.join(actor, timeout):
        return None
    _orig_join(self, 10.0)  # the Python part is over; the OS thread is exiting
    return None


def _sleep(seconds: float) -> None:
    sched = ACTIVE
    if sched is None or sched.over or sched.me() is None:
        _real_sleep(seconds)
        return
    sched.sleep(seconds)


MONOTONIC_EPOCH = 1000.0
WALL_EPOCH = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


class _Clocks:
    """time.monotonic / time.time as actors see them: a fixed epoch plus virtual time, so
    that a replay reads exactly the same times."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.monotonic0 = MONOTONIC_EPOCH
        self.time0 = WALL_EPOCH

    def monotonic(self) -> float:
        sched = ACTIVE
        if sched is None or sched.me() is None:
            return _real_monotonic()
        return self.monotonic0 + self.clock.now

    def time(self) -> float:
        sched = ACTIVE
        if sched is None or sched.me() is None:
            return _real_time()
        return self.time0 + self.clock.now


_orig_new_event_loop = asyncio.events.new_event_loop


def _new_event_loop() -> asyncio.AbstractEventLoop:
    sched = ACTIVE
    if sched is None or sched.me() is None:
        return _orig_new_event_loop()
    where = user_frame(2)
    at = "" if where is None else f" at {where[0]}:{where[1]} in {where[2]}"
    raise OwnEventLoop(
        f"an explored test started an event loop of its own (asyncio.run, "
        f"asyncio.new_event_loop or asyncio.Runner{at}): plait cannot schedule the tasks of a "
        f"loop it does not run, and its virtual clock would stall that loop's timers. Make the "
        f"test `async def` and await the code directly: plait runs it on its own loop and "
        f"explores its tasks")


def install(sched: Scheduler) -> None:
    """Put the execution's scheduler in charge of threading, queue and time."""
    global ACTIVE
    ACTIVE = sched
    from plait import world  # the outside world's steps run on this scheduler too

    world.activate(sched)
    clocks = _Clocks(sched.clock)
    locks.install_types()  # a no-op when plait was loaded as a pytest plugin
    locks.ACTIVE = sched
    _patch(threading, "_time", clocks.monotonic)
    _patch(threading, "_counter", itertools.count(1).__next__)  # Thread-1, Thread-2... per run
    _patch(threading.Thread, "start", _start)
    _patch(threading.Thread, "__init__", _make_init(itertools.count(1).__next__))
    if threading.Thread.__hash__ is not _thread_hash:  # permanent: hashes must never change
        threading.Thread.__hash__ = _thread_hash  # type: ignore[method-assign,assignment]
    _patch(threading.Thread, "join", _join)
    _patch(queue, "SimpleQueue", queue._PySimpleQueue)  # type: ignore[attr-defined]
    _patch(queue, "time", clocks.monotonic)
    _patch(time, "sleep", _sleep)
    _patch(asyncio.events, "new_event_loop", _new_event_loop)
    _patch(asyncio, "new_event_loop", _new_event_loop)
    _patch(time, "monotonic", clocks.monotonic)
    _patch(time, "time", clocks.time)


def uninstall() -> None:
    global ACTIVE
    if ACTIVE is not None:
        locks.forget_execution(ACTIVE)
    ACTIVE = None
    locks.ACTIVE = None
    from plait import world

    world.deactivate()
    for (owner, name), value in _ORIGINAL.items():
        setattr(owner, name, value)
    _ORIGINAL.clear()
