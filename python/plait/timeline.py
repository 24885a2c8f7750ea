"""One timeline per execution: the steps of tasks, threads and the outside world in the one
order they ran, each with the accesses it made, and the conflicting accesses among them.

Every recorded step (a task step on the event loop, a thread step at a scheduling point, an
outside-world step, which is a thread step) takes a number from one counter when it is
logged, so the text report, the HTML report and anything else that shows an execution
number its steps the same way. Only recording executions (the confirming replay of a
failure, a replayed token) log steps; exploring pays nothing for this.

It sits above the drivers (it reads their recorded steps) and below the reports.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass, field
from typing import Any

from plait._paths import short_path
from plait.aio.trace import StepTrace

Location = tuple[str, int, str]


@dataclass
class Entry:
    """One step of the timeline."""

    number: int  # 1-based, in the order the steps ran
    actor: int
    actor_name: str
    kind: str  # "task" (an asyncio task step) or "thread" (a thread step, outside-world ones too)
    what: str  # "resumes at ...; suspends at ...", "writes Counter.value"
    where: Location | None
    clock: float
    notes: list[str] = field(default_factory=list)
    accesses: list[Any] = field(default_factory=list)  # plait.threads.scheduler.Access
    conflicts: list[int] = field(default_factory=list)  # indexes into Timeline.conflicts

    @property
    def source(self) -> str:
        if self.where is None:
            return ""
        return linecache.getline(self.where[0], self.where[1]).strip()


@dataclass
class Touch:
    """One access in a conflict: who, read or write, where, and the step that made it."""

    actor_name: str
    write: bool
    where: Location | None
    entry: int | None  # Entry.number, when the step is in the timeline


@dataclass
class Conflict:
    """Accesses to one location by different actors, at least one a write, interleaved."""

    what: str  # "Counter.value"
    story: str  # the one sentence: a lost update or a stale re-read ("" if neither)
    touches: list[Touch]


@dataclass
class Timeline:
    entries: list[Entry]
    actors: list[tuple[int, str, str]]  # (id, name, kind), in order of first step
    conflicts: list[Conflict]


def build(trace: Any) -> Timeline:
    """The timeline of a recorded execution: a ``StepTrace`` (asyncio body, its ``threads``
    the thread-level run) or a thread run (``ThreadRun``)."""
    raw: list[tuple[int, str, Any]] = []  # (seq, kind, step)
    run = trace.threads if isinstance(trace, StepTrace) else trace
    loop_thread: set[int] = set()
    if isinstance(trace, StepTrace):
        raw.extend((step.seq, "task", step) for step in trace.steps)
        sched = getattr(run, "sched", None)
        if sched is not None:
            loop_thread = {a.id for a in sched.actors.values() if a.no_points}
    if run is not None:
        raw.extend((step.seq, "thread", step) for step in run.steps or [])
    raw.sort(key=lambda item: item[0])
    sched = getattr(run, "sched", None)
    accesses: list[tuple[int, Any]] = list(sched.accesses) if sched is not None else []

    # Which step made each access: a thread step's accesses follow its log entry until the
    # next step's begin; a task step's are the ones made while it ran.
    owner: list[int | None] = [None] * len(accesses)
    starts = [_start(kind, step) for _seq, kind, step in raw]
    entries: list[Entry] = []
    carried: list[str] = []
    actors: dict[int, tuple[int, str, str]] = {}
    for index, (_seq, kind, step) in enumerate(raw):
        if kind == "task":
            carried.extend(step.notes)
            begin, end = step.first, step.last
            shown = step.is_task_step() or step.actor_name.startswith("executor")
            actor, name = step.actor, step.actor_name
        else:
            begin = step.mark
            end = next((s for s in starts[index + 1:] if s >= begin), len(accesses))
            shown = step.actor not in loop_thread
            actor, name = step.actor, step.name
        if not shown:
            continue
        entry = _entry(len(entries) + 1, kind, step, carried)
        carried = []
        for position in range(begin, min(end, len(accesses))):
            if accesses[position][0] == actor and owner[position] is None:
                owner[position] = entry.number
                if not accesses[position][1].sync:
                    entry.accesses.append(accesses[position][1])
        entries.append(entry)
        actors.setdefault(actor, (actor, name, kind))
    conflicts = _conflicts(accesses, owner, sched)
    for number, conflict in enumerate(conflicts):
        for touch in conflict.touches:
            if touch.entry is not None and number not in entries[touch.entry - 1].conflicts:
                entries[touch.entry - 1].conflicts.append(number)
    return Timeline(entries, list(actors.values()), conflicts)


def _start(kind: str, step: Any) -> int:
    return int(step.first if kind == "task" else step.mark)


def _entry(number: int, kind: str, step: Any, notes: list[str]) -> Entry:
    if kind == "thread":
        return Entry(number, step.actor, step.name, "thread", step.what, step.where, step.clock,
                     notes)
    what, where = describe_task_step(step)
    return Entry(number, step.actor, step.actor_name, "task", what, where, step.clock, notes)


def describe_task_step(step: Any) -> tuple[str, Location | None]:
    """('starts; suspends at file:line in f', the suspension point) of a task step."""
    if not step.is_task_step():
        if step.actor_name.startswith("executor job"):
            return "ran to completion in a worker thread", None
        return f"loop callback {step.callback}", None
    kind, value = step.before
    head = "starts" if kind == "new" else f"resumes at {point_text(value)}"
    resumed_at = value[0] if kind != "new" and value else None
    kind, value = step.after
    if kind == "done":
        return f"{head}; {value}", resumed_at
    return f"{head}; suspends at {point_text(value)}", value[0] if value else None


def _conflicts(accesses: list[tuple[int, Any]], owner: list[int | None],
               sched: Any) -> list[Conflict]:
    if sched is None or not accesses:
        return []
    names = {**sched.names, **{actor.id: actor.name for actor in sched.actors.values()}}
    by_key: dict[int, list[tuple[int, Any, int | None]]] = {}
    for position, (actor, access) in enumerate(accesses):
        if not access.sync:
            by_key.setdefault(access.key, []).append((actor, access, owner[position]))
    found: list[Conflict] = []
    for seq in by_key.values():
        actors = {a for a, _, _ in seq}
        if len(actors) < 2 or not any(acc.write for _, acc, _ in seq):
            continue
        # interleaved: some actor touches it, another one writes, the first touches it again
        interleaved = any(
            seq[i][0] == seq[k][0] and any(seq[j][0] != seq[i][0] and
                                           (seq[j][1].write or seq[i][1].write)
                                           for j in range(i + 1, k))
            for i in range(len(seq)) for k in range(i + 2, len(seq)))
        if not interleaved:
            continue
        what = max((acc.what for _, acc, _ in seq), key=lambda text: not text.startswith("."))
        story = _explain(seq, what, names)
        touches = [Touch(str(names.get(actor, actor)), access.write, access.where, entry)
                   for actor, access, entry in seq]
        found.append(Conflict(what, story, touches))
    return found


def at(where: Location | None) -> str:
    return f" at {short_path(where[0])}:{where[1]}" if where else ""


def _explain(seq: list[tuple[int, Any, int | None]], what: str, names: dict[int, str]) -> str:
    """The order that matters, in one sentence: a lost update or a stale re-read."""
    for i, (first, read, _) in enumerate(seq):
        if read.write:
            continue
        for j in range(i + 1, len(seq)):
            other, write, _ = seq[j]
            if other == first or not write.write:
                continue
            for k in range(j + 1, len(seq)):
                again, later, _ = seq[k]
                if again != first:
                    continue
                a, b = names.get(first, str(first)), names.get(other, str(other))
                if later.write:
                    return (f"{a} read {what}{at(read.where)}, then {b} wrote it{at(write.where)} "
                            f"before {a} wrote it back{at(later.where)}: {b}'s update was lost.")
                return (f"{a} read {what}{at(read.where)}, then {b} wrote it{at(write.where)} "
                        f"before {a} read it again{at(later.where)}: the two reads disagree.")
    return ""


def point_text(point: Any) -> str:
    """'file:line in function (asyncio.sleep)' of a suspension point."""
    loc, waits_in = point if point else (None, "")
    if loc is None:
        return "?"
    text = f"{short_path(loc[0])}:{loc[1]} in {loc[2]}"
    if waits_in and waits_in not in ("__await__", "__aenter__", "__aexit__"):
        text += f" (asyncio.{waits_in})"
    return text
