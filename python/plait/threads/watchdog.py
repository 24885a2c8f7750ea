"""The watchdog: an execution whose test body is stuck in something uncontrolled still ends.

While another actor runs, the body's thread waits on its baton with ``hang_timeout`` and
reports a ``Hang`` itself. When the body's thread is the one running and it blocks for
real (a lock made before plait was imported, ``socket.recv``, ``subprocess.wait``, a long
real sleep), nobody else is left to notice: this thread does. When the running actor has
made no scheduling decision for ``hang_timeout`` seconds it records the Hang, ends the
execution, and, if the body runs in the main thread, interrupts the blocking call with a
signal whose handler raises :class:`ExecutionOver` (lock acquires, sleeps, socket reads and
``waitpid`` all return to Python on a signal). One daemon thread serves the whole process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from plait._paths import is_plait_file
from plait.threads.scheduler import ExecutionOver, Hang, Scheduler, _allocate

SIGNAL = signal.SIGUSR1
_real_sleep = time.sleep
_real_monotonic = time.monotonic

_watched: list[tuple[Scheduler, int]] = []  # (scheduler, ident of the body's thread)
_state_lock = _allocate()
_started = False


def _loop() -> None:
    seen: tuple[int, int, bool] | None = None
    since = _real_monotonic()
    while True:
        _real_sleep(0.05)
        with _state_lock:
            current = _watched[-1] if _watched else None
        now = _real_monotonic()
        if current is None:
            seen = None
            continue
        sched, body_ident = current
        running = sched.current
        hung = sched.hung is not None
        if not hung and (sched.over or running is None or running.ident != body_ident):
            seen = None  # another actor runs: the body's own baton wait watches it
            continue
        mark = (id(sched), sched.progress, hung)
        if mark != seen:
            seen, since = mark, now
            continue
        if now - since < sched.hang_timeout:
            continue
        if not hung:
            assert running is not None
            sched.hung = Hang(sched._describe_hang(running))
            sched._end_all()
        # Still not back (a `finally` or `__exit__` blocked again): interrupt it once more
        # every hang_timeout, until the body's thread leaves the execution.
        since = now
        sched.interrupting = True
        if body_ident == threading.main_thread().ident:
            signal.pthread_kill(body_ident, SIGNAL)


def _on_signal(signum: int, frame: Any) -> None:
    with _state_lock:
        current = _watched[-1] if _watched else None
    # Raised only into the user's code (or the library call it is stuck in): plait's own
    # code notices the end of the execution by itself, and must not be cut in half.
    if current is not None and current[0].interrupting and frame is not None \
            and not is_plait_file(frame.f_code.co_filename):
        current[0].interrupting = False
        raise ExecutionOver


def _after_fork_in_child() -> None:
    """A forked child (plait.workers) has no watchdog thread, and the lock may have been
    held by it at the fork: start from nothing."""
    global _state_lock, _started
    _state_lock = _allocate()
    _started = False
    _watched.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class watching:
    """Watch ``sched`` for the duration of a ``with`` block run by the body's thread."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched = sched
        self.previous: Any = None
        self.main = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> None:
        global _started
        if self.main:
            self.previous = signal.signal(SIGNAL, _on_signal)
        with _state_lock:
            _watched.append((self.sched, threading.get_ident()))
            if not _started:
                _started = True
                threading.Thread(target=_loop, name="plait watchdog", daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        with _state_lock:
            _watched.remove((self.sched, threading.get_ident()))
        self.sched.interrupting = False
        if self.main:
            signal.signal(SIGNAL, self.previous)
