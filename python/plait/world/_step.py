"""The external step: a call that reads or changes state outside the interpreter.

Files, sockets, subprocesses and SQL statements all come down to one thing: the running
actor is about to touch state that tracing cannot see, and it says which. In a thread actor
that is a scheduling point whose step carries the footprint (the point comes first, so the
call itself runs in the step the engine chose to start there). Inside an asyncio task step
(the event loop's thread, where only awaits switch) the footprint joins the current step.

Keys are tuples of plain values, canonical across executions (a normalized path, a table
name and a primary key), hashed with a stable hash: never ``id()``, never the salted
``hash()``, so sleep sets and wakeup trees compare steps from different executions, and
processes that split one exploration agree on them.

Outside an execution every entry point costs one global lookup.
"""

from __future__ import annotations

import _thread
import os
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plait._paths import short_path
from plait.footprint import Access, Key, key_hash

Where = tuple[str, int, str]

OUTSIDE: Key = ("outside",)
"""The conservative key: an effect on it conflicts with every other external effect."""


@dataclass(frozen=True, slots=True)
class Effect:
    """One read or write of a canonical key by an external step.

    ``key``: a tuple of str, int, float, bool, bytes, None (or tuples of those), equal in
    every execution for the same thing: ``("file", "/abs/path")``, ``("sql", db, "seats", 3)``.
    ``write``: whether the step changes it. ``label``: what a report calls it.
    ``race``: whether two unordered accesses to it are a data race worth a ``RaceWarning``;
    False for keys that only keep the search sound (``OUTSIDE``, a directory's listing).
    ``sync``: the access orders the steps that make it, like a lock (a row lock a statement
    takes and its transaction's end releases): it joins happens-before for race detection
    and is never a race itself, nor shown as an access in reports.
    """

    key: Key
    write: bool
    label: str = ""
    race: bool = True
    sync: bool = False


_OUTSIDE_KEY = key_hash(OUTSIDE)


# -- the running execution ----------------------------------------------------------------------
_SCHED: Any = None  # the thread scheduler of the running execution (both drivers run on it)
_ON_ACTIVATE: list[Callable[[], None]] = []  # per-execution caches to clear
_ON_DEACTIVATE: list[Callable[[], None]] = []  # per-execution settings to undo
_INTERCEPT: list[Any] = []  # the interception of unannotated calls: plait.world puts
# plait.world.intercept here (that module is built on this one)


def on_activate(reset: Callable[[], None]) -> None:
    _ON_ACTIVATE.append(reset)


def on_deactivate(undo: Callable[[], None]) -> None:
    _ON_DEACTIVATE.append(undo)


def activate(sched: Any) -> None:
    """The drivers call this when an execution starts (its scheduler runs threads and the
    event loop's thread alike): external steps go to it, and unannotated calls to the file
    system, sockets and subprocesses are intercepted until ``deactivate``."""
    global _SCHED
    for reset in _ON_ACTIVATE:
        reset()
    if not _INTERCEPTING[0]:
        _INTERCEPT[0].install()
        _INTERCEPTING[0] = True
    _SCHED = sched


def deactivate() -> None:
    global _SCHED
    _SCHED = None
    for undo in _ON_DEACTIVATE:
        undo()
    if _INTERCEPTING[0] and not _HELD[0]:
        _INTERCEPT[0].uninstall()
        _INTERCEPTING[0] = False


# Installing the interception is some 80 attribute swaps; an exploration holds it in place
# from its first execution to its end instead of once per execution. Between executions
# the wrappers pass every call through (no execution: _SCHED is None).
_HELD = [0]  # explorations running in this process that hold the interception
_INTERCEPTING = [False]


def hold() -> None:
    """An exploration starts: keep the interception installed between its executions."""
    _HELD[0] += 1


def release() -> None:
    """The exploration ends: the originals come back (unless another one still holds)."""
    _HELD[0] = max(0, _HELD[0] - 1)
    if not _HELD[0] and _SCHED is None and _INTERCEPTING[0]:
        _INTERCEPT[0].uninstall()
        _INTERCEPTING[0] = False


def active() -> bool:
    """Is the calling thread an actor of a running execution?"""
    sched = _SCHED
    return sched is not None and not sched.over and sched.me() is not None


def external_step(what: str, effects: Sequence[Effect], where: Where | None = None) -> None:
    """The running actor is about to make a call with these effects on the outside world.

    In a thread: a scheduling point (other actors may run first), then the call's step
    carries ``effects``. In an asyncio task step: ``effects`` join the current step. Outside
    an execution, or in a thread plait does not control: nothing. ``what`` is the report's
    text for the step ("open('/tmp/x/log', 'a')"); ``where`` is the user's frame (file, line,
    function), found when None and a report is being recorded.

    Every external step also reads ``OUTSIDE``, so a write of ``OUTSIDE`` (a subprocess, a
    socket, DDL) conflicts with all of them.
    """
    sched = _SCHED
    if sched is None:
        return
    step(sched, what, effects, where, 2)


_QUIET: dict[int, int] = {}  # thread -> depth of external_call blocks it is inside
on_activate(_QUIET.clear)  # a thread abandoned inside a block must not silence a later one


class external_call:  # lower case: used like a function, `with external_call(...):`
    """``with external_call(what, effects):`` is ``external_step`` for the call made inside
    the block, and the block is that one step: the file, socket and subprocess calls it
    makes on its way (a database driver's own socket I/O) are not steps of their own.

        with external_call("UPDATE seats ...", effects):
            cursor.execute(sql, params)
    """

    __slots__ = ("effects", "what", "where")

    def __init__(self, what: str, effects: Sequence[Effect],
                 where: Where | None = None) -> None:
        self.what = what
        self.effects = effects
        self.where = where

    def __enter__(self) -> None:
        sched = _SCHED
        if sched is None:
            return
        step(sched, self.what, self.effects, self.where, 2)
        ident = _thread.get_ident()
        _QUIET[ident] = _QUIET.get(ident, 0) + 1

    def __exit__(self, *exc: object) -> None:
        ident = _thread.get_ident()
        depth = _QUIET.get(ident, 0)
        if depth > 1:
            _QUIET[ident] = depth - 1
        elif depth:
            del _QUIET[ident]


def step(sched: Any, what: str, effects: Sequence[Effect], where: Where | None,
         depth: int) -> None:
    """``external_step`` with the scheduler in hand; ``depth`` frames up is the caller."""
    actor = sched.me()
    if actor is None or sched.over:
        return
    if _QUIET and _QUIET.get(_thread.get_ident()):
        return  # inside an external_call: the call's own I/O is that step
    recording = sched.trace is not None
    if recording and where is None:
        where = user_frame(sys._getframe(depth))
    in_task = actor.no_points  # the event loop's thread: task steps are its points
    if not in_task:
        sched.point(what, None, where)
    if not recording:
        if sched.record_footprints:
            _lean(actor.pending, effects)
        return
    pending = actor.pending if sched.record_footprints else None
    outside = False
    for effect in effects:
        key = key_hash(effect.key)
        if key == _OUTSIDE_KEY:
            outside = True
        access = Access(key, effect.write, effect.label or describe_key(effect.key), where,
                        effect.sync)
        if pending is not None:
            pending.append(access)
        if effect.race or effect.sync:
            sched.accesses.append((actor.id, access))
    if pending is not None and not outside:
        pending.append(Access(_OUTSIDE_KEY, False, "the outside world", where))
    if in_task:
        _note_in_task(what, where)


_LEAN: dict[tuple[Key, bool], Access] = {}  # (key, write) -> a shared footprint entry
_OUTSIDE_READ = Access(_OUTSIDE_KEY, False, "the outside world", None)


def _lean(pending: list[Access], effects: Sequence[Effect]) -> None:
    """An exploring execution records footprints only (no report): reuse their entries."""
    outside = False
    for effect in effects:
        entry = (effect.key, effect.write)
        try:
            access = _LEAN.get(entry)
        except TypeError:  # an unhashable part: key_hash says which
            key_hash(effect.key)
            raise
        if access is None:
            if len(_LEAN) > 100_000:
                _LEAN.clear()
            access = _LEAN[entry] = Access(key_hash(effect.key), effect.write, "", None)
        if access.key == _OUTSIDE_KEY:
            outside = True
        pending.append(access)
    if not outside:
        pending.append(_OUTSIDE_READ)


def _note_in_task(what: str, where: Where | None) -> None:
    """Inside a task step the report lists task steps: the external call is a note on it."""
    import asyncio

    loop = asyncio._get_running_loop()
    trace = getattr(loop, "_plait_trace", None)
    if trace is None:
        return
    at = ""
    if where is not None:
        at = f" at {short_path(where[0])}:{where[1]}"
    trace.note(f"{what}{at}")


def describe_key(key: Key) -> str:
    if key == OUTSIDE:
        return "the outside world"
    if len(key) == 2 and key[0] in ("file", "dir") and isinstance(key[1], str):
        return f"{'the listing of ' if key[0] == 'dir' else ''}{key[1]}"
    return " ".join(str(part) for part in key)


# -- blocking outside ---------------------------------------------------------------------------
def block(on: Any, what: str, timeout: float | None = None) -> bool:
    """The running thread actor waits for ``on``, something outside the interpreter (a row
    lock held by another actor's transaction): the others run until one calls
    ``wake(on)``. Returns False if ``timeout`` (virtual seconds) expired first, True at once
    outside an execution. When every actor waits, plait reports a deadlock naming ``on``
    (a string, or an object with a ``plait_label()`` method)."""
    sched = _SCHED
    if sched is None or sched.over or sched.me() is None:
        return True
    if sched.me().no_points:
        raise RuntimeError("plait.world.block() is for thread actors: a task awaits instead")
    return bool(sched.block(on, timeout, what))


def wake(on: Any) -> None:
    """Let every actor waiting in ``block(on, ...)`` run again (it re-checks its condition)."""
    sched = _SCHED
    if sched is not None:
        sched.wake(on)


def current_actor() -> int | None:
    """The running actor's id (threads and tasks share one id space), or None outside."""
    sched = _SCHED
    if sched is None:
        return None
    actor = sched.me()
    if actor is None:
        return None
    if actor.no_points:
        import asyncio

        task = asyncio.current_task() if asyncio._get_running_loop() is not None else None
        found = getattr(task, "_plait_actor", None)
        if found is not None:
            return int(found)
    return int(actor.id)


# -- whose frame --------------------------------------------------------------------------------
def _prefixes(*keys: str) -> tuple[str, ...]:
    found: set[str] = set()
    for key in keys:
        path = sysconfig.get_paths().get(key)
        if path:
            found.add(os.path.abspath(path) + os.sep)
            found.add(os.path.realpath(path) + os.sep)
    return tuple(sorted(found))


_SITE = _prefixes("purelib", "platlib")
_STDLIB = _prefixes("stdlib", "platstdlib")
_PLAIT = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
                os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep})
_LIBRARY: dict[str, bool] = {}


def is_library(filename: str) -> bool:
    """Frames a report looks through: the standard library, installed packages, plait."""
    known = _LIBRARY.get(filename)
    if known is None:
        real = filename if filename.startswith("<") else os.path.realpath(filename)
        known = filename.startswith("<frozen") or any(
            p.startswith(_SITE + _STDLIB + _PLAIT) for p in (filename, real))
        _LIBRARY[filename] = known
    return known


def user_frame(frame: Any) -> Where | None:
    """The innermost frame at or above ``frame`` that is the user's code."""
    depth = 0
    while frame is not None and depth < 60:
        code = frame.f_code
        if not is_library(code.co_filename):
            return (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
        depth += 1
    return None
