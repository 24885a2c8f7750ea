"""Where each task step resumed and suspended: the raw material of a failure report.

Only the confirming replay of a failing schedule records steps, so exploration itself pays
nothing for this.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from dataclasses import dataclass, field
from typing import Any

from plait._paths import is_library_file
from plait.footprint import next_seq

Location = tuple[str, int, str]  # (filename, line, function)



def _frames(awaitable: Any) -> list[Location]:
    """The chain of frames a suspended coroutine is waiting in, outermost first."""
    chain: list[Location] = []
    seen = 0
    while awaitable is not None and seen < 100:
        seen += 1
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) \
            or getattr(awaitable, "ag_frame", None)
        if frame is None:
            break
        chain.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return chain


def _is_library(filename: str) -> bool:
    return is_library_file(filename)


def suspension_point(coro: Any) -> tuple[Location | None, str]:
    """The innermost user frame of a suspended coroutine, and the library call it waits in."""
    chain = _frames(coro)
    user = [loc for loc in chain if not _is_library(loc[0])]
    inner = chain[-1] if chain else None
    waits_in = ""
    if inner is not None and _is_library(inner[0]):
        waits_in = inner[2]
    return (user[-1] if user else inner), waits_in


def format_location(point: tuple[Location | None, str]) -> str:
    loc, waits_in = point
    if loc is None:
        return "?"
    text = f"{os.path.relpath(loc[0]) if not loc[0].startswith('<') else loc[0]}:{loc[1]} ({loc[2]})"
    if waits_in:
        text += f" in asyncio.{waits_in}" if waits_in != "__await__" else ""
    return text


def _task_of(handle: asyncio.Handle) -> Any:
    owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    return owner if isinstance(owner, asyncio.Future) and hasattr(owner, "get_coro") else None


def task_location(handle: asyncio.Handle) -> tuple[str, Any]:
    """State of the handle's task: ('at', point) while suspended, or ('done', outcome)."""
    task = _task_of(handle)
    if task is None:
        return ("none", None)
    if task.done():
        if task.cancelled():
            return ("done", "was cancelled")
        exc = task.exception()
        if exc is None:
            return ("done", "finished")
        message = str(exc)
        return ("done", f"raised {type(exc).__name__}{': ' + message if message else ''}")
    coro = task.get_coro()
    if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        return ("new", suspension_point(coro))
    return ("at", suspension_point(coro))


def describe_handle(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    if name is None:
        name = type(callback).__name__
    return str(name)


@dataclass
class Step:
    index: int
    actor: int
    actor_name: str
    callback: str
    before: tuple[str, Any]
    after: tuple[str, Any]
    clock: float
    notes: list[str] = field(default_factory=list)
    seq: int = 0  # position in the execution's one timeline (tasks, threads, the world)
    first: int = 0  # its accesses: Scheduler.accesses[first:last]
    last: int = 0

    def is_task_step(self) -> bool:
        return self.before[0] != "none"


@dataclass
class StepTrace:
    """Steps of one execution, recorded while replaying a failing schedule."""

    steps: list[Step] = field(default_factory=list)
    pending_notes: list[str] = field(default_factory=list)
    threads: Any = None  # the thread-level run, when executor threads took part

    def step(self, actor: int, actor_name: str, callback: str, before: tuple[str, Any],
             after: tuple[str, Any], clock: float, first: int = 0, last: int = 0) -> None:
        notes, self.pending_notes = self.pending_notes, []
        self.steps.append(Step(len(self.steps) + 1, actor, actor_name, callback, before, after,
                               clock, notes, next_seq(), first, last))

    def note(self, text: str) -> None:
        self.pending_notes.append(text)
