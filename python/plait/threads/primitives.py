"""The one modeled primitive, and the patches that put it under everything in ``threading``.

``threading``'s Condition, Event, Semaphore, BoundedSemaphore, Barrier, the pure-Python
RLock and ``queue``'s classes are all built on ``threading.Lock`` / ``_allocate_lock``.
So plait models that one lock: during an execution, locks created by actor threads are
:class:`Lock` objects whose blocking is decided by the scheduler, and every other
primitive created then is modeled for free, through the stdlib's own code. Primitives
created before the execution started stay real (create them inside the test).
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time
from typing import Any

from plait._paths import is_plait_file
from plait.threads.scheduler import (
    Access,
    ExecutionOver,
    Scheduler,
    VirtualClock,
    _allocate,
)

_STDLIB = os.path.dirname(os.__file__) + os.sep

ACTIVE: Scheduler | None = None


def _user_frame(depth: int = 2) -> tuple[str, int, str] | None:
    frame = sys._getframe(depth)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_STDLIB) and not is_plait_file(name):
            return (name, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


class Lock:
    """``threading.Lock`` under plait's control (falls back to a real lock outside it)."""

    __slots__ = ("__weakref__", "_created", "_holder", "_locked", "_real", "_sched")

    def __init__(self) -> None:
        self._sched = ACTIVE
        self._locked = False
        self._holder: Any = None
        self._real = _allocate()
        sched = self._sched
        self._created = _user_frame() if sched is not None and sched.trace is not None else None
        if sched is not None:
            sched.keep.append(self)  # ids key footprints: keep them unique for the execution

    def plait_label(self) -> str:
        if self._created is None:
            return f"a lock (0x{id(self):x})"
        from plait.report import short_path

        return f"the lock created at {short_path(self._created[0])}:{self._created[1]}"

    def _controlled(self) -> Scheduler | None:
        sched = self._sched
        if sched is None or sched is not ACTIVE or sched.me() is None:
            return None
        return sched

    def _point(self, sched: Scheduler, what: str) -> None:
        where = _user_frame(3) if sched.trace is not None else None
        sched.point(what, Access(id(self), True, self.plait_label(), where, sync=True), where)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        sched = self._controlled()
        if sched is None:
            return self._real.acquire(blocking, timeout)
        if sched.over:
            me = sched.me()
            if self._locked and (me is None or me.aborted):
                raise ExecutionOver  # an aborted actor unwinds
            self._locked = True  # the execution is being torn down: nobody to wait for
            return True
        self._point(sched, "acquires a lock")
        if self._locked:
            if not blocking:
                return False
            if timeout is not None and timeout >= 0:
                deadline = sched.clock.now + timeout
            else:
                deadline = None
            while self._locked:
                left = None if deadline is None else deadline - sched.clock.now
                if left is not None and left <= 0:
                    return False
                if not sched.block(self, left, what=f"waits for {self.plait_label()}"):
                    if self._locked:
                        return False
                # the retry after the wake-up is part of the new step: it touches the lock
                sched.note(Access(id(self), True, self.plait_label(), None, sync=True))
        self._locked = True
        me = sched.me()
        self._holder = me
        if me is not None:
            me.holds.append(self)
        return True

    def release(self) -> None:
        sched = self._controlled()
        if sched is None:
            if self._locked:  # taken under control, released after: keep it consistent
                self._locked = False
                return
            self._real.release()
            return
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        if not sched.over:
            self._point(sched, "releases a lock")
        self._locked = False
        holder = self._holder
        if holder is not None and self in holder.holds:
            holder.holds.remove(self)
        self._holder = None
        sched.wake(self)

    def locked(self) -> bool:
        return self._locked or self._real.locked()

    def _at_fork_reinit(self) -> None:
        self._locked = False
        self._real = _allocate()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<plait.Lock {state} object at 0x{id(self):x}>"


# -- patching -------------------------------------------------------------------------------
_ORIGINAL: dict[tuple[Any, str], Any] = {}


def _patch(owner: Any, name: str, value: Any) -> None:
    _ORIGINAL.setdefault((owner, name), getattr(owner, name))
    setattr(owner, name, value)


def _rlock(*args: Any, **kwargs: Any) -> Any:
    return threading._PyRLock(*args, **kwargs)  # type: ignore[attr-defined]


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


_orig_start = threading.Thread.start
_orig_join = threading.Thread.join
_real_sleep = time.sleep
_real_monotonic = time.monotonic
_real_time = time.time


def _start(self: threading.Thread) -> None:
    sched = ACTIVE
    if sched is None or sched.over or sched.me() is None:
        return _orig_start(self)
    actor = sched.add_actor(self.name, self)
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


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    actor = getattr(self, "_plait_actor", None)
    sched = ACTIVE
    if actor is None or sched is None or sched.over or sched.me() is None:
        return _orig_join(self, timeout)
    where = _user_frame() if sched.trace is not None else None
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


def install(sched: Scheduler) -> None:
    """Put the execution's scheduler in charge of threading, queue and time."""
    global ACTIVE
    ACTIVE = sched
    from plait import world  # the outside world's steps run on this scheduler too

    world.activate(sched)
    clocks = _Clocks(sched.clock)
    _patch(threading, "Lock", Lock)
    _patch(threading, "_allocate_lock", Lock)
    _patch(threading, "RLock", _rlock)
    _patch(threading, "_time", clocks.monotonic)
    _patch(threading, "_counter", itertools.count(1).__next__)  # Thread-1, Thread-2... per run
    _patch(threading.Thread, "start", _start)
    _patch(threading.Thread, "join", _join)
    _patch(queue, "SimpleQueue", queue._PySimpleQueue)  # type: ignore[attr-defined]
    _patch(queue, "time", clocks.monotonic)
    _patch(time, "sleep", _sleep)
    _patch(time, "monotonic", clocks.monotonic)
    _patch(time, "time", clocks.time)


def uninstall() -> None:
    global ACTIVE
    ACTIVE = None
    from plait import world

    world.deactivate()
    for (owner, name), value in _ORIGINAL.items():
        setattr(owner, name, value)
    _ORIGINAL.clear()
