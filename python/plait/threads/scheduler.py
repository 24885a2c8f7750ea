"""Threads as actors: exactly one runs; the others wait on a baton until the engine picks them.

Each actor owns a real lock used as its baton (acquired = waiting). At a scheduling point
the running actor asks the engine which actor goes next; if that is another one, it
releases that actor's baton and waits on its own. Switching only when the chosen actor
changes keeps the OS-thread handoff (20-140 µs here) off the common path; waiting happens
in ``lock.acquire`` with the GIL released.

Blocking is modeled, not real: a modeled lock that is held makes the acquiring actor
*blocked* on it, and the engine picks among the others. When every actor is blocked and
no timed wait can expire, that is a deadlock, reported with who holds and who waits for
what. Time is virtual: ``time.sleep`` and timed waits expire when nothing else can run.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait._paths import STDLIB_DIRS, is_library_file, is_plait_file, short_path
from plait.errors import Deadlock, PlaitError
from plait.footprint import U64, Access, key_hash, next_seq

_allocate = _thread.allocate_lock  # the real primitive, captured before any patching
_get_ident = _thread.get_ident


_FINISHING = "the other threads to finish"


class ExecutionOver(BaseException):
    """Raised inside an actor the execution no longer needs (it ended while the actor waited)."""


class Hang(PlaitError, RuntimeError):
    """An actor did not come back to a scheduling point in time: it is stuck in something
    plait does not control (a real lock, a blocking socket, a C extension)."""


@dataclass(eq=False)
class Actor:
    id: int
    name: str
    ident: int | None = None
    baton: Any = field(default_factory=_allocate)
    blocked_on: Any = None  # what it waits for (a modeled lock, a thread, "sleep"), or None
    deadline: float | None = None  # virtual time at which a timed wait expires
    timed_out: bool = False
    finished: bool = False
    aborted: bool = False
    thread: threading.Thread | None = None
    holds: list[Any] = field(default_factory=list)  # modeled locks it holds (for reports)
    where: tuple[str, int, str] | None = None  # source location of its last scheduling point
    pending: list[Access] = field(default_factory=list)  # footprint of its current step
    opaque: bool = False  # its current step may touch anything (plait.point(), I/O)
    no_points: bool = False  # the event loop's thread: accesses are footprints, not points
    stuck_in: str | None = None  # what it waits for outside plait's control, for a Hang report
    locks_made: int = 0  # modeled locks it made: with its id, their canonical footprint keys

    def runnable(self) -> bool:
        return not self.finished and self.blocked_on is None


@dataclass
class ThreadStep:
    actor: int
    name: str
    what: str
    where: tuple[str, int, str] | None
    clock: float
    seq: int = 0  # position in the execution's one timeline (tasks, threads, the world)
    mark: int = 0  # len(Scheduler.accesses) when the step was logged: its accesses follow


class Scheduler:
    """The thread-level scheduler of one execution."""

    def __init__(self, chooser: Any, clock: Any, *, trace: list[ThreadStep] | None = None,
                 hang_timeout: float = 10.0, record_footprints: bool = False) -> None:
        self.chooser = chooser
        self.clock = clock
        self.trace = trace
        self.hang_timeout = hang_timeout
        self.actors: dict[int, Actor] = {}
        self.by_ident: dict[int, Actor] = {}
        self.current: Actor | None = None
        self.next_id = 1
        self.over = False
        self.errors: list[tuple[Actor, BaseException]] = []
        self.hung: Hang | None = None
        self.record_footprints = record_footprints
        self.accesses: list[tuple[int, Access]] = []  # (actor, access), when tracing
        self.keep: list[Any] = []  # modeled objects whose ids key footprints
        self.adopted: list[Any] = []  # locks this execution took under control (see locks.py)
        self.progress = 0  # scheduling decisions so far: the watchdog's sign of life
        self.interrupting = False  # the watchdog signalled the body's thread out of a hang
        self.names: dict[int, str] = {}  # names of actors that are not threads (tasks)
        self.free = False  # after the body ends: no engine decisions, default order
        self.deadlock: Deadlock | None = None
        self.engine_error: Exception | None = None
        self.tracefn: Any = None  # 3.11: the tracer's sys.settrace function (run_threaded)

    # -- actors ------------------------------------------------------------------------------
    def new_id(self) -> int:
        """Actor ids, shared by threads and asyncio tasks: one id space for the engine."""
        actor_id = self.next_id
        self.next_id += 1
        return actor_id

    def add_actor(self, name: str, thread: threading.Thread | None = None) -> Actor:
        actor = Actor(self.new_id(), name, thread=thread)
        actor.baton.acquire()  # a new actor waits until it is chosen
        self.actors[actor.id] = actor
        if self.current is not None:
            # spawn happens-before the child's first step: the parent writes, the child reads
            self.note(Access(_thread_key(actor), True, f"start of {name}", None, sync=True))
        return actor

    def note(self, access: Access) -> None:
        """An access of the running actor's current step that is not a scheduling point."""
        actor = self.by_ident.get(_get_ident())
        if actor is None:
            return
        if self.record_footprints:
            actor.pending.append(access)
        if self.trace is not None:
            self.accesses.append((actor.id, access))

    def adopt_current(self, name: str) -> Actor:
        """Make the calling thread (the test body's) an actor, and the running one."""
        actor = self.add_actor(name, threading.current_thread())
        actor.ident = _get_ident()
        self.by_ident[actor.ident] = actor
        self.current = actor
        return actor

    def me(self) -> Actor | None:
        """The actor the calling thread is, if it is one of this execution's."""
        return self.by_ident.get(_get_ident())

    def enter(self, actor: Actor) -> None:
        """First thing a new actor thread does: wait to be chosen."""
        actor.ident = _get_ident()
        self.by_ident[actor.ident] = actor
        self._wait(actor)
        self.note(Access(_thread_key(actor), False, f"start of {actor.name}", None, sync=True))

    def exit(self, actor: Actor) -> None:
        """Last thing an actor thread does: it is finished; pass the baton on."""
        self.note(Access(_thread_key(actor), True, f"end of {actor.name}", None, sync=True))
        actor.finished = True
        self.wake(actor)  # joiners
        if self.over or actor.aborted:
            return
        self._pass_on(actor, "finishes")

    # -- the scheduling point ----------------------------------------------------------------
    def point(self, what: str, access: Access | None = None, where: Any = None) -> None:
        """The running actor reached a scheduling point; maybe let another one run."""
        actor = self.by_ident.get(_get_ident())
        if actor is None or self.over:
            return
        if self.record_footprints:
            self._flush_footprint(actor)  # the step that ends here is the running actor's
            if access is not None:
                actor.pending.append(access)  # ... and this access opens its next step
        actor.where = where or actor.where
        chosen = self._choose(actor)
        if chosen is not actor:
            self._switch(actor, chosen)
        # Logged when the actor goes on (the access happens now), not when it arrived here.
        if self.trace is not None:
            self._log(actor, what)
            if access is not None:
                self.accesses.append((actor.id, access))

    def _log(self, actor: Actor, what: str) -> None:
        """A step of the report's timeline (only while recording)."""
        assert self.trace is not None
        self.trace.append(ThreadStep(actor.id, actor.name, what, actor.where, self.clock.now,
                                     next_seq(), len(self.accesses)))

    def _runnable(self) -> list[int]:
        # Actor.runnable() inlined: this runs at every scheduling point
        return [a.id for a in self.actors.values() if not a.finished and a.blocked_on is None]

    def _flush_footprint(self, actor: Actor) -> None:
        if not self.record_footprints:
            return
        if actor.opaque:  # no record_step: the engine counts the step as touching everything
            actor.opaque = False
        else:
            try:
                self.chooser.record_step(actor.id,
                                         [(a.key & U64, a.write) for a in actor.pending])
            except Exception as exc:
                self.engine_error = exc
                self._end_all()
                raise ExecutionOver from exc
        actor.pending = []

    def _choose(self, actor: Actor) -> Actor:
        self.progress += 1
        runnable = self._runnable()
        while not runnable:
            if self._expire_timed_waits():
                runnable = self._runnable()
                continue
            finishing = [a for a in self.actors.values() if a.blocked_on is _FINISHING]
            if finishing:  # the body is done and the rest wait forever: end the execution
                finishing[0].blocked_on = None
                runnable = [finishing[0].id]
                break
            self.deadlock = self._deadlock()
            self._end_all()
            raise ExecutionOver
        current = actor.id if not actor.finished and actor.blocked_on is None else None
        if self.free:
            chosen = current if current is not None else runnable[0]
        else:
            try:
                chosen = self.chooser.choose_actor(runnable, current)
            except Exception as exc:  # the engine's (divergence, nondeterminism): end it all
                self.engine_error = exc
                self._end_all()
                raise ExecutionOver from exc
        return self.actors[chosen]

    def _switch(self, me: Actor, target: Actor) -> None:
        self.current = target
        target.baton.release()
        self._wait(me)

    def _wait(self, me: Actor) -> None:
        """Wait for the baton; give up (and report) if the running actor never hands it back."""
        while not me.baton.acquire(True, self.hang_timeout):
            if self.over or self.hung is not None:
                break
            running = self.current
            if running is not None and running is not me and not running.finished:
                self.hung = Hang(self._describe_hang(running))
            else:  # nobody holds the baton: a bug in plait, reported rather than hung on
                self.hung = Hang("plait lost track of the running thread (an internal error); "
                                 "please report it with this test")
            self._end_all()
            break
        if me.aborted or self.over:
            raise ExecutionOver

    def _pass_on(self, me: Actor, what: str) -> None:
        """``me`` cannot run any more (finished or blocked): hand the baton to someone."""
        if self.trace is not None:
            self._log(me, what)
        self._flush_footprint(me)
        chosen = self._choose(me)
        if chosen is me:
            return
        self.current = chosen
        chosen.baton.release()

    # -- blocking ----------------------------------------------------------------------------
    def block(self, on: Any, timeout: float | None = None, what: str = "blocks") -> bool:
        """The running actor waits for ``on``. Returns False if the wait timed out."""
        actor = self.me()
        assert actor is not None
        actor.blocked_on = on
        actor.timed_out = False
        actor.deadline = None if timeout is None else self.clock.now + max(0.0, timeout)
        if self.trace is not None and not (
                self.trace and self.trace[-1].actor == actor.id and self.trace[-1].what == what):
            self._log(actor, what)
        self._flush_footprint(actor)
        chosen = self._choose(actor)
        if chosen is not actor:
            self._switch(actor, chosen)
        actor.deadline = None
        return not actor.timed_out

    def wake(self, on: Any, count: int | None = None) -> None:
        """Make actors blocked on ``on`` runnable again (they re-check their condition)."""
        woken = 0
        for actor in self.actors.values():
            if actor.blocked_on is on:
                actor.blocked_on = None
                actor.deadline = None
                woken += 1
                if count is not None and woken >= count:
                    return

    def _expire_timed_waits(self) -> bool:
        timed = [a for a in self.actors.values()
                 if not a.finished and a.blocked_on is not None and a.deadline is not None]
        if not timed:
            return False
        deadline = min(a.deadline for a in timed if a.deadline is not None)
        self.clock.advance_to(deadline)
        for actor in timed:
            if actor.deadline is not None and actor.deadline <= deadline:
                actor.blocked_on = None
                actor.deadline = None
                actor.timed_out = True
        return True

    def sleep(self, seconds: float) -> None:
        actor = self.me()
        if actor is None:
            return
        if seconds <= 0:
            self.point("sleeps 0")
            return
        self.block("sleep", timeout=seconds, what=f"sleeps {seconds:g}s")

    # -- threads -----------------------------------------------------------------------------
    def join(self, target: Actor, timeout: float | None = None) -> bool:
        while not target.finished:
            if not self.block(target, timeout, what=f"joins {target.name}"):
                return False
        self.note(Access(_thread_key(target), False, f"end of {target.name}", None, sync=True))
        return True

    # -- the end -----------------------------------------------------------------------------
    def finish_body(self) -> None:
        """The test body returned: let the other actors run to their end, in default order."""
        me = self.me()
        # Threads still running after the body are part of the execution: their steps are
        # explored like any other (a race with an unjoined thread is still a race).
        while me is not None and not self.over:
            others = [a for a in self.actors.values() if a is not me and not a.finished]
            if not others:
                break
            if not any(a.runnable() for a in others) and not any(
                    a.deadline is not None for a in others):
                break  # the rest wait forever (e.g. idle pool workers): they are ended below
            self.block(_FINISHING, what="waits for the other threads")

    def _end_all(self) -> None:
        self.over = True
        for actor in self.actors.values():
            if not actor.finished and actor.ident != _get_ident():
                actor.aborted = True
                try:
                    actor.baton.release()
                except RuntimeError:
                    pass

    def shutdown(self) -> None:
        """End the execution: every actor still waiting is unwound with ExecutionOver."""
        self._end_all()
        deadline = time.monotonic() + 2.0
        for actor in self.actors.values():
            thread = actor.thread
            if thread is None or thread is threading.current_thread():
                continue
            while thread.is_alive() and time.monotonic() < deadline and not self.hung:
                _real_join(thread, 0.05)
        _abandon([a.thread for a in self.actors.values() if a.thread is not None
                  and a.thread is not threading.current_thread() and a.thread.is_alive()])

    # -- reports -----------------------------------------------------------------------------
    def _deadlock(self) -> Deadlock:
        lines = ["every thread is blocked and none can run (a deadlock):"]
        stuck: list[tuple[str, str, str, Any]] = []
        frames = sys._current_frames()
        for actor in self.actors.values():
            if actor.finished:
                continue
            frame = frames.get(actor.ident or -1)
            held = ", ".join(describe(lock, frame) for lock in actor.holds) or "nothing"
            where = _fmt(actor.where)
            waits = describe(actor.blocked_on, frame)
            lines.append(f"  {actor.name} holds {held}; waits for {waits} at {where}")
            stuck.append((actor.name, held, waits, actor.where))
        deadlock = Deadlock("\n".join(lines))
        deadlock.actors = stuck
        return deadlock

    def _describe_hang(self, actor: Actor) -> str:
        frame = sys._current_frames().get(actor.ident or -1)
        where = "?"
        if frame is not None:
            inner: Any = frame
            user: Any = frame
            while user is not None and (user.f_code.co_filename.startswith(STDLIB_DIRS)
                                        or is_plait_file(user.f_code.co_filename)):
                user = user.f_back
            user = user or inner
            where = _fmt((user.f_code.co_filename, user.f_lineno, user.f_code.co_name))
            if inner is not user:
                where += f", inside {inner.f_code.co_name}()"
        stuck = actor.stuck_in or (
            "is stuck in something plait does not control (a lock made before plait was "
            "imported, a blocking socket or pipe, a subprocess, a C extension)")
        return (f"{actor.name} did not reach a scheduling point within {self.hang_timeout:g}s: "
                f"it {stuck}, at {where}. plait abandoned the thread and ended the execution")


def _abandon(threads: list[threading.Thread]) -> None:
    """Threads stuck for real are left behind: they are daemons (see primitives._start), and
    a ThreadPoolExecutor worker must not be joined at exit either."""
    futures = sys.modules.get("concurrent.futures.thread")
    queues = getattr(futures, "_threads_queues", None)
    if queues is not None:
        for thread in threads:
            queues.pop(thread, None)


def _thread_key(actor: Actor) -> int:
    return key_hash(("thread", actor.id))


def describe(thing: Any, frame: Any = None) -> str:
    if thing is None:
        return "nothing"
    if isinstance(thing, Actor):
        return f"{thing.name} to finish"
    if isinstance(thing, str):
        return thing
    label = getattr(thing, "plait_label", None)
    text = label() if callable(label) else type(thing).__name__
    names = _local_names(thing, frame)
    return f"{text} ({names})" if names else text


def _local_names(thing: Any, frame: Any) -> str:
    """How the blocked thread's own code calls the object: `first` in take()."""
    found: list[str] = []
    depth = 0
    while frame is not None and depth < 30 and len(found) < 2:
        depth += 1
        try:
            names = [n for n, v in frame.f_locals.items() if v is thing]
        except Exception:
            names = []
        if names and not is_library_file(frame.f_code.co_filename):
            found.append(f"`{names[0]}` in {frame.f_code.co_name}()")
        frame = frame.f_back
    return ", ".join(found)


def _fmt(where: tuple[str, int, str] | None) -> str:
    if where is None:
        return "?"
    return f"{short_path(where[0])}:{where[1]} in {where[2]}"


_real_join: Callable[[threading.Thread, float | None], None] = threading.Thread.join


class VirtualClock:
    """One clock for the whole execution: threads and the event loop read the same time."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def advance_to(self, when: float) -> None:
        if when > self.now:
            self.now = when
