"""A controlled asyncio event loop: one actor step at a time, chosen by the engine.

The loop is the stdlib selector loop with one change of rule: instead of running every
ready callback in a batch, it runs *one* callback per iteration, and when more than one
actor (task, executor job, the loop's own callback lane) has something ready, the engine
picks which. With every choice at its default (the head of the ready queue, the earliest
timer) the order is exactly the stdlib's: ``tests/aio/test_differential.py`` checks it.

Time is virtual: when nothing is ready and no real I/O is pending, the clock jumps to the
next timer. Timers due within ``timer_slack`` seconds of the earliest one may fire in any
order; which one fires is a recorded choice, so short sleeps behave like the "some short
delay" they stand for on a loaded machine, and replays stay exact.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import selectors
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import Any

from plait import world
from plait.aio.trace import StepTrace, describe_handle, task_location
from plait.errors import Deadlock
from plait.footprint import U64

LANE = 0
"""Actor id of the loop's callback lane: callbacks that belong to no task."""

_TASK_TYPES: tuple[type, ...] = (asyncio.Task,)
try:  # the pure-Python Task, used when a task factory asks for it
    from asyncio.tasks import _PyTask  # type: ignore[attr-defined]

    _TASK_TYPES = (asyncio.Task, _PyTask)
except ImportError:  # pragma: no cover
    pass


_DEBUG = asyncio.coroutines._is_debug_mode()  # type: ignore[attr-defined]
"""asyncio's debug mode as a new loop starts in it (PYTHONASYNCIODEBUG, -X dev)."""

_NO_OWNER = frozenset({types.FunctionType, functools.partial})
"""Callback types that belong to no task (no ``__self__``): the loop's lane, found fast."""


class Chooser:
    """What the loop asks at each scheduling point (the engine, or a recorder around it)."""

    def choose_actor(self, runnable: list[int], current: int | None) -> int:  # pragma: no cover
        raise NotImplementedError

    def choose(self, n: int) -> int:  # pragma: no cover
        raise NotImplementedError


class _ExecutorJob:
    """``run_in_executor`` work: one step of its own actor, run to completion in a real thread.

    The loop waits for it, so the job's effects land at a point the engine chose; which
    thread ran it is real (``threading.current_thread()`` is not the loop's thread).
    """

    __slots__ = ("actor", "args", "func", "future")

    def __init__(self, actor: int, future: asyncio.Future[Any], func: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self.actor = actor
        self.future = future
        self.func = func
        self.args = args

    def __call__(self) -> None:
        if self.future.cancelled():
            return
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = self.func(*self.args)
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"plait-executor-{self.actor}", daemon=True)
        worker.start()
        worker.join()
        if self.future.cancelled():
            return
        if "error" in box:
            self.future.set_exception(box["error"])
        else:
            self.future.set_result(box.get("result"))


class PlaitLoop(asyncio.SelectorEventLoop):
    """The controlled loop. One instance serves one execution."""

    def __init__(self, chooser: Chooser, *, timer_slack: float = 0.1,
                 trace: StepTrace | None = None, hang_timeout: float = 10.0,
                 sched: Any = None) -> None:
        selector = selectors.DefaultSelector()
        super().__init__(selector)
        # the selector's own table, read at every batch (get_map() builds a view each time)
        fds = getattr(selector, "_fd_to_key", None)
        self._plait_fds: Any = selector.get_map() if fds is None else fds
        self._plait_begin(chooser, timer_slack, trace, hang_timeout, sched)

    def _plait_begin(self, chooser: Chooser, timer_slack: float, trace: StepTrace | None,
                     hang_timeout: float, sched: Any) -> None:
        """The state of one execution (everything a reused loop starts afresh)."""
        # With a thread scheduler (plait's runner always has one) the loop's thread is one
        # actor among threads: executor jobs are thread actors, ids and clock are shared.
        self._plait_sched = sched
        self._plait_vclock = sched.clock if sched is not None else _Clock()
        self._plait_chooser = chooser
        self._plait_slack = timer_slack
        self._plait_trace = trace
        # Task steps carry a footprint when the engine uses them (dpor) or steps are recorded
        self._plait_footprints = sched is not None and (
            sched.record_footprints or sched.trace is not None)
        # 3.11's sys.settrace costs a Python call per Python call, asyncio's and plait's
        # own included. While dpor explores (nothing recorded), the loop's thread is traced
        # only inside the steps whose accesses count (see _plait_step), not in the loop.
        self._plait_tracefn: Any = None
        if self._plait_footprints and trace is None and sched.trace is None:
            tracer = getattr(sched, "tracer", None)
            function = getattr(tracer, "thread_trace_function", None)
            function = function() if function is not None else None
            if function is not None and sys.gettrace() == function:
                self._plait_tracefn = function
        self._plait_hang_timeout = hang_timeout
        self._plait_batch = 0
        self._plait_pending: int | None = None
        self._plait_tasks = 0
        self._plait_jobs = 0
        self._plait_mixed = False
        self._plait_next_actor = 1
        self._plait_names: dict[int, str] = {LANE: "loop"}
        self._plait_keep: list[object] = []  # strong refs: actor ids must not be reused
        self._plait_threads_at_start = threading.active_count()
        self._plait_woken = False  # something wrote to the self-pipe: read it
        # After the test body finished (or the engine gave up), cleanup runs in default order
        # without asking the engine: leftover cancellation order is not part of the schedule.
        self.plait_free = False

    # -- reuse across executions ------------------------------------------------------------
    def plait_reusable(self) -> bool:
        """Whether the next execution can run on this loop instead of a new one: nothing of
        the last one is left in it (no file descriptor, transport or signal handler)."""
        return (not self.is_closed() and not self.is_running()
                and len(self._plait_fds) == 1
                and not self._signal_handlers  # type: ignore[attr-defined]
                and not self._transports  # type: ignore[attr-defined]
                and self._default_executor is None)  # type: ignore[attr-defined]

    def plait_reset(self, chooser: Chooser, *, timer_slack: float = 0.1,
                    trace: StepTrace | None = None, hang_timeout: float = 10.0,
                    sched: Any = None) -> None:
        """Make a finished loop (``plait_reusable()``) what a new one would be.

        Building a selector loop costs a socket pair, an epoll instance and their teardown
        (about half of a small execution); reusing one costs resetting what asyncio keeps
        per loop, which is what ``BaseEventLoop.__init__`` sets."""
        if self._plait_woken:
            self._read_from_self()  # type: ignore[attr-defined]
        self._ready.clear()  # type: ignore[attr-defined]
        self._scheduled.clear()  # type: ignore[attr-defined]
        self._timer_cancelled_count = 0
        self._stopping = False
        self._current_handle = None
        self._exception_handler = None
        self._task_factory = None
        if self._debug != _DEBUG:  # type: ignore[attr-defined]
            self.set_debug(_DEBUG)
        self.slow_callback_duration = 0.1
        if self._asyncgens:
            self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._executor_shutdown_called = False
        self._plait_begin(chooser, timer_slack, trace, hang_timeout, sched)

    def plait_run(self, coro: Any) -> Any:
        """What ``asyncio.Runner.run`` does for plait: the body as the main task, in a copy of
        the current context (no SIGINT handler: an interrupt ends the exploration)."""
        task = self.create_task(coro, context=contextvars.copy_context())
        tracefn = self._plait_tracefn
        if tracefn is None:
            return self.run_until_complete(task)
        sys.settrace(None)  # back on around the steps that need it (_plait_step)
        try:
            return self.run_until_complete(task)
        finally:
            sys.settrace(tracefn)

    def plait_finish(self) -> None:
        """What ``asyncio.Runner.close`` does before closing the loop: cancel the tasks left,
        finalize async generators and the default executor (each only if there is one).
        Runs in default order, without asking the engine."""
        self.plait_free = True
        # Every task of the loop is adopted once it has a step in the ready queue (a task
        # made without create_task has its first one there), so _plait_keep holds them all.
        # asyncio cancels them in set order; plait in creation order, the same every time.
        for handle in self._ready:  # type: ignore[attr-defined]
            self._plait_actor_of(handle)
        left: list[Any] = [t for t in self._plait_keep
                           if isinstance(t, _TASK_TYPES) and not t.done()]  # type: ignore[attr-defined]
        if left:
            for task in left:
                task.cancel()
            self.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            for task in left:
                if task.cancelled():
                    continue
                if task.exception() is not None:
                    self.call_exception_handler({
                        "message": "unhandled exception during asyncio.run() shutdown",
                        "exception": task.exception(),
                        "task": task,
                    })
        if self._asyncgens:
            self.run_until_complete(self.shutdown_asyncgens())
        if self._default_executor is not None:  # type: ignore[attr-defined]
            self.run_until_complete(self.shutdown_default_executor())

    # -- clock -----------------------------------------------------------------------------
    def time(self) -> float:
        return self._plait_vclock.now

    @property
    def _plait_clock(self) -> float:
        return self._plait_vclock.now

    @_plait_clock.setter
    def _plait_clock(self, value: float) -> None:
        self._plait_vclock.now = value

    def _plait_new_id(self) -> int:
        if self._plait_sched is not None:
            return int(self._plait_sched.new_id())
        actor = self._plait_next_actor
        self._plait_next_actor += 1
        return actor

    # -- actors ----------------------------------------------------------------------------
    def create_task(  # type: ignore[override]
        self, coro: Any, *, name: str | None = None, **kwargs: Any
    ) -> Any:
        if name is None:
            self._plait_tasks += 1
            name = f"Task-{self._plait_tasks}"
        task = super().create_task(coro, name=name, **kwargs)
        self._plait_adopt(task)
        return task

    def _plait_adopt(self, task: Any) -> int:
        actor = self._plait_new_id()
        task._plait_actor = actor
        coro = task.get_coro()
        label = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", "?")
        self._plait_names[actor] = f"{task.get_name()} ({label})"
        self._plait_keep.append(task)
        return actor

    def _plait_actor_of(self, handle: asyncio.Handle) -> int:
        callback = handle._callback  # type: ignore[attr-defined]
        if type(callback) in _NO_OWNER:
            return LANE
        owner = getattr(callback, "__self__", None)
        if owner is not None and isinstance(owner, _TASK_TYPES):
            actor = getattr(owner, "_plait_actor", None)
            return actor if actor is not None else self._plait_adopt(owner)
        if type(callback) is _ExecutorJob:
            return callback.actor
        return LANE

    def actor_name(self, actor: int) -> str:
        return self._plait_names.get(actor, f"actor {actor}")

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> Any:
        self._check_closed()  # type: ignore[attr-defined]
        future = self.create_future()
        name = getattr(func, "__qualname__", None) or type(func).__name__
        if self._plait_sched is not None:
            # A real thread, and an actor: it interleaves with the tasks at its own
            # scheduling points; its result comes back through call_soon_threadsafe.
            def job() -> None:
                try:
                    result = func(*args)
                except BaseException as exc:
                    self.call_soon_threadsafe(_settle, future, None, exc)
                else:
                    self.call_soon_threadsafe(_settle, future, result, None)

            self._plait_jobs += 1
            threading.Thread(target=job, name=f"executor-{self._plait_jobs} ({name})",
                             daemon=True).start()
            return future
        actor = self._plait_new_id()
        self._plait_names[actor] = f"executor job {actor} ({name})"
        self.call_soon(_ExecutorJob(actor, future, func, args))
        return future

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Any, *args: Any, context: Any = None
    ) -> Any:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        self._plait_woken = True
        if self._plait_sched is not None:
            self._plait_sched.wake(self)
        return handle

    # -- the one rule that changes ---------------------------------------------------------
    def _run_once(self) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if scheduled and scheduled[0]._cancelled:
            self._plait_drop_cancelled_timers()
        if self._plait_batch <= 0:
            if ready and not self._plait_woken and len(self._plait_fds) == 1 \
                    and not self._signal_handlers:  # type: ignore[attr-defined]
                # _plait_new_batch's common case, inlined: no waiting, nothing to select
                if scheduled:
                    end = self._plait_vclock.now + self._clock_resolution  # type: ignore[attr-defined]
                    while scheduled and scheduled[0]._when < end:
                        handle = heapq.heappop(scheduled)
                        handle._scheduled = False
                        ready.append(handle)
                self._plait_batch = len(ready)
            else:
                self._plait_new_batch()
        while ready and ready[0]._cancelled:
            ready.popleft()
            self._plait_batch -= 1
        if not ready:
            self._plait_batch = 0
            self._plait_pending = None
            return
        pending = self._plait_pending
        actor_of = self._plait_actor_of
        if pending is None and actor_of(ready[0]) == LANE:
            # The common case: no choice to make. Lane callbacks at the head of the batch run
            # one after another here, as the stdlib's batch would (stopping where it returns
            # to run_forever: a stop() request, a task step, the end of the batch).
            if self._plait_trace is not None or self._plait_footprints or self.plait_free:
                self._plait_step(0, LANE)
                return
            while True:
                ready.popleft()._run()
                self._plait_batch -= 1
                if self._plait_batch <= 0 or not ready or self._stopping:
                    return
                head = ready[0]
                if head._cancelled or actor_of(head) != LANE:
                    return
        if pending is None and len(ready) == 1:  # one task step ready: nothing to scan
            actor = actor_of(ready[0])
            if not self.plait_free:
                sched = self._plait_sched
                if sched is not None and len(sched.actors) > 1 and \
                        self._plait_other_threads_running():
                    sched.point("event loop step")  # threads may run here
                actor = self._plait_chooser.choose_actor([actor], None)
            self._plait_step(0, actor)
            return
        # Where each actor's first ready handle sits. The lane is never chosen: asyncio
        # promises that callbacks run in the order they were scheduled, and its own
        # internals rely on it, so a lane callback is never overtaken. What the engine
        # reorders are task steps (and executor jobs): "this await took longer".
        first: dict[int, int] = {}
        actors: list[int] = []
        index = 0
        for handle in ready:
            if not handle._cancelled:
                actor = actor_of(handle)
                if actor not in first:
                    first[actor] = index
                    if actor != LANE:
                        actors.append(actor)
            index += 1
        if pending is None or pending not in first:
            if first.get(LANE) == 0 or not actors:
                self._plait_step(0, LANE)
                return
            if self.plait_free:
                pending = actors[0]
            else:
                sched = self._plait_sched
                if sched is not None and len(sched.actors) > 1 and \
                        self._plait_other_threads_running():
                    self._plait_sched.point("event loop step")  # threads may run here
                pending = self._plait_chooser.choose_actor(actors, None)
        index = first[pending]
        lane = first.get(LANE)
        if lane is not None and lane < index:
            self._plait_pending = pending  # run the callbacks it must not overtake first
            self._plait_step(lane, LANE)
            return
        self._plait_pending = None
        self._plait_step(index, pending)

    def _plait_step(self, index: int, actor: int) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        if index:
            handle = ready[index]
            del ready[index]
        else:
            handle = ready.popleft()
        self._plait_batch -= 1
        if self.plait_free or (self._plait_trace is None and not self._plait_footprints):
            handle._run()  # nothing to record: the step alone
            return
        trace = self._plait_trace
        sched = self._plait_sched
        task_step = actor != LANE and self._plait_footprints
        before = task_location(handle) if trace is not None else None
        first = len(sched.accesses) if trace is not None and sched is not None else 0
        if task_step:
            me = sched.me()
            if me is not None:
                me.pending = []
            mark = len(sched.accesses)
        tracefn = self._plait_tracefn
        if tracefn is not None and (task_step or self._plait_mixed or len(sched.actors) > 1):
            # A task step's accesses are its footprint. A lane callback's count only once
            # threads take part (they join the loop thread's step); before any thread exists
            # they happen-before every thread's steps, so dpor needs none of them.
            sys.settrace(tracefn)
            try:
                handle._run()
            finally:
                sys.settrace(None)
        else:
            handle._run()
        if task_step:
            self._plait_task_footprint(actor, sched, mark)
        if trace is not None and before is not None:
            trace.step(actor, self.actor_name(actor), describe_handle(handle), before,
                       task_location(handle), self._plait_clock, first,
                       len(sched.accesses) if sched is not None else 0)

    def _plait_task_footprint(self, actor: int, sched: Any, mark: int) -> None:
        """The footprint of a task step (accesses the tracer saw in the loop's thread),
        recorded for partial-order reduction. Once threads are involved the loop's steps
        are left without a footprint: the engine then treats them as touching everything."""
        if sched.trace is not None and len(sched.accesses) > mark:
            # the loop's thread ran this task's step: its accesses are the task's
            sched.names[actor] = self.actor_name(actor)
            for index in range(mark, len(sched.accesses)):
                sched.accesses[index] = (actor, sched.accesses[index][1])
        me = sched.me()
        if me is None or not sched.record_footprints:
            return
        if self._plait_mixed or len(sched.actors) > 1:
            self._plait_mixed = True
            me.opaque = True
        else:
            self._plait_chooser.record_step(  # type: ignore[attr-defined]
                actor, [(a.key & U64, a.write) for a in me.pending])
        me.pending = []

    def _plait_drop_cancelled_timers(self) -> None:
        scheduled = self._scheduled  # type: ignore[attr-defined]
        while scheduled and scheduled[0]._cancelled:
            self._timer_cancelled_count -= 1
            heapq.heappop(scheduled)._scheduled = False

    def _plait_new_batch(self) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        scheduled = self._scheduled  # type: ignore[attr-defined]
        fired_by_choice = False
        if not ready and not self._stopping:
            if self._plait_real_io_pending():
                self._plait_wait_real(scheduled[0]._when - self._plait_clock if scheduled else None)
            elif self._plait_threads_running():
                # Wait, as an actor, for a thread to call back (or for the next timer).
                timeout = scheduled[0]._when - self._plait_clock if scheduled else None
                self._plait_sched.block(self, timeout, what="event loop waits for threads")
                if not self._ready and scheduled:  # type: ignore[attr-defined]
                    self._plait_clock = max(self._plait_clock, scheduled[0]._when)
            elif scheduled:
                fired_by_choice = self._plait_fire_timer()
            else:
                self._plait_wait_uncontrolled()
        if self._plait_woken or self._signal_handlers or self._plait_real_io_pending():  # type: ignore[attr-defined]
            # Otherwise nothing can have written to a file descriptor the loop watches: the
            # self-pipe is written only by call_soon_threadsafe and signals.
            self._plait_woken = False
            self._process_events(self._selector.select(0))  # type: ignore[attr-defined]
        if not fired_by_choice:
            end = self._plait_clock + self._clock_resolution  # type: ignore[attr-defined]
            while scheduled and scheduled[0]._when < end:
                handle = heapq.heappop(scheduled)
                handle._scheduled = False
                ready.append(handle)
        self._plait_batch = len(ready)

    def _plait_fire_timer(self) -> bool:
        """Advance the virtual clock to a timer. Returns True when a non-default timer fired."""
        scheduled = self._scheduled  # type: ignore[attr-defined]
        head = scheduled[0]
        horizon = head._when + self._plait_slack
        others = _due_by(scheduled, horizon)
        choice = 0
        if others and not self.plait_free:
            choice = self._plait_chooser.choose(len(others) + 1)
        if choice == 0:
            self._plait_clock = max(self._plait_clock, head._when)
            return False
        handle = others[choice - 1]
        scheduled.remove(handle)
        heapq.heapify(scheduled)
        handle._scheduled = False
        self._plait_clock = max(self._plait_clock, handle._when)
        self._ready.append(handle)  # type: ignore[attr-defined]
        if self._plait_trace is not None:
            self._plait_trace.note(f"timer due at t={handle._when:.4f} fired before the one "
                                   f"due at t={head._when:.4f}")
        return True

    def _plait_threads_running(self) -> bool:
        sched = self._plait_sched
        if sched is None or len(sched.actors) < 2:  # the loop's thread alone (the usual case)
            return False
        return self._plait_other_threads_running()

    def _plait_other_threads_running(self) -> bool:
        sched = self._plait_sched
        me = sched.me()
        return any(a is not me and not a.finished for a in sched.actors.values())

    def plait_label(self) -> str:
        return "a call back from a thread (call_soon_threadsafe)"

    def _plait_real_io_pending(self) -> bool:
        # The self-pipe is always registered; anything more is a real file descriptor.
        return len(self._plait_fds) > 1

    def _plait_wait_real(self, timeout: float | None) -> None:
        """Real I/O is pending: wait for it in real time, and let virtual time follow."""
        start = time.monotonic()
        events = self._selector.select(None if timeout is None else max(0.0, timeout))  # type: ignore[attr-defined]
        self._process_events(events)  # type: ignore[attr-defined]
        self._plait_clock += time.monotonic() - start

    def _plait_wait_uncontrolled(self) -> None:
        """Nothing is ready and no timer is set: only a thread plait does not control can help."""
        deadline = time.monotonic() + self._plait_hang_timeout
        while threading.active_count() > self._plait_threads_at_start:
            events = self._selector.select(0.01)  # type: ignore[attr-defined]
            if events:
                self._process_events(events)  # type: ignore[attr-defined]
                return
            if self._ready or time.monotonic() > deadline:  # type: ignore[attr-defined]
                break
        if not self._ready:  # type: ignore[attr-defined]
            raise Deadlock(self.describe_blocked())

    def describe_blocked(self) -> str:
        lines = ["every task is blocked and nothing can wake one (a deadlock):"]
        for task in self._plait_keep:
            if isinstance(task, _TASK_TYPES) and not task.done():  # type: ignore[attr-defined]
                where = task_location_of_task(task)
                actor = getattr(task, "_plait_actor", LANE)
                lines.append(f"  {self.actor_name(actor)} waits at {where}")
        return "\n".join(lines)


def _due_by(heap: list[Any], horizon: float) -> list[Any]:
    """The live timers other than the head due by ``horizon``, earliest first (ties in heap
    order). Walks only the part of the heap that is due: a node's children are never due
    earlier than it, so the walk stops where the deadlines pass the horizon."""
    found: list[tuple[float, int, Any]] = []
    size = len(heap)
    stack = [2, 1]
    while stack:
        index = stack.pop()
        if index < size:
            handle = heap[index]
            if handle._when <= horizon:
                if not handle._cancelled:
                    found.append((handle._when, index, handle))
                stack.append(2 * index + 2)
                stack.append(2 * index + 1)
    if not found:
        return []
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found]


class _Clock:
    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def task_location_of_task(task: Any) -> str:
    from plait.aio.trace import format_location, suspension_point

    return format_location(suspension_point(task.get_coro()))


# the worker threads behind run_in_executor / to_thread call the user's function for it
world.add_trampolines(PlaitLoop.run_in_executor, _ExecutorJob.__call__)
