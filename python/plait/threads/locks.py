"""plait's Lock and RLock: plain locks outside explorations, scheduled ones inside.

``threading``'s Condition, Event, Semaphore, BoundedSemaphore, Barrier and ``queue.Queue``
are built on ``threading.Lock`` / ``threading.RLock``. :func:`install_types` makes these two
names plait's classes when plait loads (the pytest plugin does it before collection
imports any test module), so every lock made afterwards, at import of the user's modules,
in fixtures, in libraries' module globals, is one plait can schedule.

Each lock wraps a real lock, and the real lock's state is the truth at all times:

* Outside an execution (``ACTIVE is None``), or in a thread that is not an actor, a call
  goes straight to the real lock: one Python call and a global read on top of C.
* In an actor, taking the lock is a scheduling point; the real lock is then tried without
  blocking. Free: taken. Held by another actor of this execution: the actor is *blocked*
  on it and the engine runs someone else. Held by anyone else (a thread plait does not
  run, or the test before the exploration began): the actor waits for real, polling so the
  execution can still end; if it waits longer than ``hang_timeout`` it is reported as a
  ``Hang``.

A lock first used in an execution it was not created in is *adopted* by that execution,
and at the end of it any hold an actor left on it is dropped: every execution starts from
the same lock state, whatever the previous one left behind.

Still real: locks created before plait was imported (``logging._lock``, ``threading``'s own
bookkeeping), ``_thread.allocate_lock()`` called directly, locks inside C extensions, and
``queue.SimpleQueue`` objects made outside an execution. An actor blocked on one of those is
reported as a ``Hang`` after ``hang_timeout`` seconds, naming where it is stuck.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from typing import Any

from plait._paths import STDLIB_DIRS, is_plait_file, short_path, user_frame
from plait.footprint import Access, key_hash
from plait.threads.scheduler import Actor, ExecutionOver, Scheduler, _allocate

_CRLock: Any = _thread.RLock
_real_monotonic = time.monotonic
_POLL = 0.02  # seconds between checks while an actor waits for a lock held outside

ACTIVE: Scheduler | None = None  # mirrored by primitives.install/uninstall


def _label(lock: Any, kind: str, name: str | None = None) -> str:
    created = lock._created
    if name is not None:  # the variable tells apart locks made on one line
        if created is None:
            return f"the {kind} `{name}`"
        return f"the {kind} `{name}` (created at {short_path(created[0])}:{created[1]})"
    if created is None:
        return f"a {kind} (0x{id(lock):x})"
    return f"the {kind} created at {short_path(created[0])}:{created[1]}"


def _variable(thing: Any) -> str | None:
    """What to call a lock in a report: the variable it was assigned to where it was made
    (if that frame still runs), else the name the user's innermost frame holds it by."""
    return _creator_name(thing) or _held_as(thing)


def _creator_name(thing: Any) -> str | None:
    """The variable a lock was assigned to where it was made, if that frame still runs."""
    created = getattr(thing, "_created", None)
    if created is not None:
        for top in sys._current_frames().values():
            frame: Any = top
            while frame is not None:
                code = frame.f_code
                if code.co_name == created[2] and code.co_filename == created[0]:
                    for name, value in frame.f_locals.items():
                        if value is thing:
                            return str(name)
                frame = frame.f_back
    return None


def _held_as(thing: Any) -> str | None:
    """The name the user's innermost frame holds ``thing`` by (a local, else a global)."""
    frame: Any = sys._getframe(3)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(STDLIB_DIRS) and not is_plait_file(filename):
            for scope in (frame.f_locals, frame.f_globals):
                for name, value in scope.items():
                    if value is thing:
                        return str(name)
            return None
        frame = frame.f_back
    return None


class _Controlled:
    """What Lock and RLock share: adoption, scheduling points, waiting, the end of an execution."""

    __slots__ = ()
    _kind = "lock"
    _holder: Actor | None
    _sched: Scheduler | None
    _real: Any
    _created: tuple[str, int, str] | None
    _key: int

    def _made_here(self: Any) -> None:
        """A lock made inside an execution belongs to it from the start.

        Its footprint key names it canonically, by the actor that made it and how many locks
        that actor had made before: the same lock in every execution that shares the
        schedule up to its creation (sleep sets and wakeup trees compare steps of different
        executions; ``id()`` differs between them and made dpor miss traces and answer
        differently from run to run). A lock made outside keeps its identity for the whole
        exploration, so its ``id()`` is a stable key."""
        self._key = id(self)
        sched = ACTIVE
        me = None if sched is None else sched.me()
        if sched is not None and me is not None:
            me.locks_made += 1
            self._key = key_hash(("lock", me.id, me.locks_made))
            self._adopt(sched)
            if sched.trace is not None:
                self._created = user_frame(3)  # the caller of Lock()

    def acquire(self: Any, blocking: bool = True, timeout: float = -1) -> bool:
        sched = ACTIVE
        if sched is None:
            return self._real.acquire(blocking, timeout)
        return self._acquire(sched, blocking, timeout)

    __enter__ = acquire

    def _adopt(self: Any, sched: Scheduler) -> None:
        self._sched = sched
        self._holder = None
        sched.keep.append(self)  # ids key footprints: keep them unique for the execution
        sched.adopted.append(self)

    def plait_label(self) -> str:
        return _label(self, self._kind, _creator_name(self))

    def _point(self: Any, sched: Scheduler, what: str) -> None:
        if sched.trace is None:  # exploring: no labels, no frames
            sched.point(what, Access(self._key, True, "", None, sync=True), None)
            return
        where = user_frame(3)
        label = _label(self, self._kind, _variable(self))
        sched.point(f"{what.replace(' a lock', '')} {label}",
                    Access(self._key, True, label, where, sync=True), where)

    def _take(self: Any, sched: Scheduler, me: Actor, blocking: bool, timeout: float) -> bool:
        """The controlled acquire, after its scheduling point: True once the real lock is ours."""
        deadline = None if timeout is None or timeout < 0 else sched.clock.now + timeout
        while not self._real.acquire(False):
            holder = self._holder
            if holder is None or sched.actors.get(holder.id) is not holder:
                return self._wait_outside(sched, me, blocking, timeout)
            if not blocking:
                return False
            left = None if deadline is None else deadline - sched.clock.now
            if left is not None and left <= 0:
                return False
            label = "" if sched.trace is None else _label(self, self._kind, _variable(self))
            if not sched.block(self, left, what=f"waits for {label}") \
                    and self._real.locked():
                return False
            # the retry after the wake-up is part of the new step: it touches the lock
            sched.note(Access(self._key, True, self.plait_label(), None, sync=True))
        return True

    def _wait_outside(self: Any, sched: Scheduler, me: Actor, blocking: bool,
                      timeout: float) -> bool:
        """Held by a thread plait does not run: wait for real, but let the execution end."""
        if not blocking:
            return False
        me.stuck_in = f"waits for {self.plait_label()}, held outside the execution (by a " \
                      f"thread plait does not run, or taken before the exploration started)"
        give_up = None if timeout is None or timeout < 0 else _real_monotonic() + timeout
        try:
            while True:
                if sched.over:
                    raise ExecutionOver
                wait = _POLL if give_up is None else min(_POLL, give_up - _real_monotonic())
                if wait <= 0:
                    return False
                if self._real.acquire(True, wait):
                    return True
        finally:
            me.stuck_in = None

    def _held(self: Any, me: Actor | None) -> None:
        self._holder = me
        if me is not None:
            me.holds.append(self)

    def _let_go(self: Any, sched: Scheduler) -> None:
        holder = self._holder
        if holder is not None and self in holder.holds:
            holder.holds.remove(self)
        self._holder = None
        sched.wake(self)

    def _forget(self: Any, sched: Scheduler) -> None:
        """The execution ended: drop any hold one of its actors left on this lock."""
        holder = self._holder
        if holder is not None and sched.actors.get(holder.id) is holder:
            self._holder = None
            self._drop_real()
        self._sched = None


class Lock(_Controlled):
    """``threading.Lock``: a real lock outside explorations, a scheduled one inside."""

    __slots__ = ("__weakref__", "_created", "_holder", "_key", "_real", "_sched")

    def __init__(self) -> None:
        self._real = _allocate()
        self._holder: Actor | None = None
        self._sched: Scheduler | None = None
        self._created: tuple[str, int, str] | None = None
        self._made_here()

    def _acquire(self, sched: Scheduler, blocking: bool, timeout: float) -> bool:
        me = sched.me()
        if me is None:
            return self._real.acquire(blocking, timeout)
        if self._sched is not sched:
            self._adopt(sched)
        if sched.over:  # being torn down: an aborted actor unwinds, the body goes on
            if self._real.acquire(False):
                self._held(me)
                return True
            if me.aborted:
                raise ExecutionOver
            holder = self._holder
            if holder is not None and sched.actors.get(holder.id) is holder:
                self._holder = me  # its holder is gone with the execution: take it over
                return True
            return self._wait_outside(sched, me, blocking, timeout)
        self._point(sched, "acquires a lock")
        if not self._take(sched, me, blocking, timeout):
            return False
        self._held(me)
        return True

    def release(self) -> None:
        sched = ACTIVE
        if sched is None or sched.me() is None:
            self._holder = None
            self._real.release()
            return
        self._release(sched)

    def __exit__(self, *exc: object) -> None:
        if ACTIVE is None:
            self._holder = None
            self._real.release()
            return
        self.release()

    def _release(self, sched: Scheduler) -> None:
        if self._sched is not sched:
            self._adopt(sched)
        if not self._real.locked():
            raise RuntimeError("release unlocked lock")
        if not sched.over:
            self._point(sched, "releases a lock")
        self._let_go(sched)
        self._real.release()

    def _drop_real(self) -> None:
        if self._real.locked():
            self._real.release()

    def locked(self) -> bool:
        return self._real.locked()

    def _at_fork_reinit(self) -> None:
        self._real = _allocate()
        self._holder = None

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<plait.Lock {state} object at 0x{id(self):x}>"


class RLock(_Controlled):
    """``threading.RLock``: a real reentrant lock outside explorations, a scheduled one inside.

    ``_count`` counts the holds taken under control; the real lock counts them all."""

    __slots__ = ("__weakref__", "_count", "_created", "_holder", "_key", "_real", "_sched")
    _kind = "reentrant lock"

    def __init__(self) -> None:
        self._real = _CRLock()
        self._holder: Actor | None = None
        self._count = 0
        self._sched: Scheduler | None = None
        self._created: tuple[str, int, str] | None = None
        self._made_here()

    def _adopt(self, sched: Scheduler) -> None:
        super()._adopt(sched)
        self._count = 0

    def _acquire(self, sched: Scheduler, blocking: bool, timeout: float) -> bool:
        me = sched.me()
        if me is None:
            return self._real.acquire(blocking, timeout)
        if self._sched is not sched:
            self._adopt(sched)
        if self._holder is me:  # reentry: no scheduling point, nobody else can be involved
            self._real.acquire()
            self._count += 1
            return True
        if sched.over:
            if self._real.acquire(False):
                self._held(me)
                self._count += 1
                return True
            if me.aborted:
                raise ExecutionOver
            return self._wait_outside(sched, me, blocking, timeout)
        self._point(sched, "acquires a lock")
        if not self._take(sched, me, blocking, timeout):
            return False
        if self._holder is not me:
            self._held(me)
        self._count += 1
        return True

    def release(self) -> None:
        sched = ACTIVE
        if sched is None or sched.me() is None:
            self._real.release()
            return
        self._release(sched)

    def __exit__(self, *exc: object) -> None:
        if ACTIVE is None:
            self._real.release()
            return
        self.release()

    def _release(self, sched: Scheduler) -> None:
        if self._sched is not sched:
            self._adopt(sched)
        me = sched.me()
        if self._holder is not me or self._count == 0:
            self._real.release()  # raises if this thread does not own it
            return
        if self._count == 1 and not sched.over:
            self._point(sched, "releases a lock")
        self._count -= 1
        self._real.release()
        if self._count == 0:
            self._let_go(sched)

    # Condition's protocol: wait() releases every level at once and takes them back after.
    def _is_owned(self) -> bool:
        return bool(self._real._is_owned())

    def _release_save(self) -> Any:
        sched = ACTIVE
        me = None if sched is None else sched.me()
        if sched is None or me is None or self._holder is not me:
            return (self._real._release_save(), 0)
        if self._sched is not sched:
            self._adopt(sched)
        if not sched.over:
            self._point(sched, "releases a lock")
        count = self._count
        self._count = 0
        saved = self._real._release_save()
        self._let_go(sched)
        return (saved, count)

    def _acquire_restore(self, state: Any) -> None:
        saved, count = state
        sched = ACTIVE
        me = None if sched is None else sched.me()
        if sched is None or me is None or count == 0:
            self._real._acquire_restore(saved)
            return
        if self._sched is not sched:
            self._adopt(sched)
        if not sched.over:
            self._point(sched, "acquires a lock")
            self._take(sched, me, True, -1)
        elif not self._real.acquire(False):
            if me.aborted:
                raise ExecutionOver
            self._wait_outside(sched, me, True, -1)
        for _ in range(saved[0] - 1):
            self._real.acquire()
        self._held(me)
        self._count = count

    def _drop_real(self) -> None:
        # the holder's thread may be gone; a C RLock can only be released by its owner
        self._real = _CRLock()
        self._count = 0

    def locked(self) -> bool:
        if self._real.acquire(False):
            self._real.release()
            return self._holder is not None or self._real._is_owned()
        return True

    def _at_fork_reinit(self) -> None:
        self._real = _CRLock()
        self._holder = None
        self._count = 0

    def __repr__(self) -> str:
        return f"<plait.RLock object at 0x{id(self):x} held by {self._holder!r}>"


_INSTALLED: dict[str, Any] = {}


def install_types() -> None:
    """Make ``threading.Lock`` and ``threading.RLock`` plait's, for every lock made from now
    on. Idempotent; costs one Python call per acquire and release outside explorations."""
    if _INSTALLED:
        return
    _INSTALLED["Lock"] = threading.Lock
    _INSTALLED["_allocate_lock"] = threading._allocate_lock  # type: ignore[attr-defined]
    _INSTALLED["RLock"] = threading.RLock
    threading.Lock = Lock  # type: ignore[assignment]
    threading._allocate_lock = Lock  # type: ignore[attr-defined]
    threading.RLock = RLock  # type: ignore[assignment]


def uninstall_types() -> None:
    """Give ``threading`` its own Lock and RLock back (locks already made stay plait's)."""
    for name, value in _INSTALLED.items():
        setattr(threading, name, value)
    _INSTALLED.clear()


def forget_execution(sched: Scheduler) -> None:
    """End of an execution: locks it adopted drop what its actors still hold."""
    for lock in sched.adopted:
        lock._forget(sched)
    sched.adopted.clear()


__all__ = ["Lock", "RLock", "forget_execution", "install_types", "uninstall_types"]
