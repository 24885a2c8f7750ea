"""The failure report: the interleaving step by step, the error, and how to replay it."""

from __future__ import annotations

import linecache
import os
import traceback
from typing import TYPE_CHECKING, Any

from plait.aio.trace import Step, StepTrace
from plait.errors import Deadlock

if TYPE_CHECKING:
    from plait.runner import ExplorationResult


def short_path(path: str) -> str:
    if path.startswith("<"):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _point(point: Any) -> tuple[str, str]:
    """('file:line in function (asyncio.sleep)', 'source line') of a suspension point."""
    loc, waits_in = point if point else (None, "")
    if loc is None:
        return "?", ""
    text = f"{short_path(loc[0])}:{loc[1]} in {loc[2]}"
    if waits_in and waits_in not in ("__await__", "__aenter__", "__aexit__"):
        text += f" (asyncio.{waits_in})"
    return text, linecache.getline(loc[0], loc[1]).strip()


def _describe(step: Step) -> tuple[str, str]:
    if not step.is_task_step():
        if step.actor_name.startswith("executor job"):
            return "ran to completion in a worker thread", ""
        return f"loop callback {step.callback}", ""
    kind, value = step.before
    if kind == "new":
        head = "starts"
    else:
        head = f"resumes at {_point(value)[0]}"
    kind, value = step.after
    if kind == "done":
        return f"{head}; {value}", ""
    where, source = _point(value)
    return f"{head}; suspends at {where}", source


def format_steps(trace: StepTrace, *, show_lane: bool = False) -> list[str]:
    lines: list[str] = []
    shown = 0
    carried: list[str] = []
    for step in trace.steps:
        carried.extend(step.notes)
        if not show_lane and not step.is_task_step() and not step.actor_name.startswith("executor"):
            continue
        shown += 1
        lines.extend(f"        ({note})" for note in carried)
        carried = []
        what, source = _describe(step)
        lines.append(f"  {shown:>3}  t={step.clock:<7.4f} {step.actor_name}: {what}")
        if source:
            lines.append(f"                     | {source}")
    return lines


def _failing_line(error: BaseException) -> str:
    from plait._paths import is_library_file

    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not is_library_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {short_path(frame.filename)}:{frame.lineno}: {(frame.line or '').strip()}"


def format_thread_steps(run: Any) -> list[str]:
    lines: list[str] = []
    for index, step in enumerate(run.steps or [], 1):
        where = ""
        source = ""
        if step.where is not None:
            where = f" at {short_path(step.where[0])}:{step.where[1]} in {step.where[2]}"
            source = linecache.getline(step.where[0], step.where[1]).strip()
        lines.append(f"  {index:>3}  t={step.clock:<7.4f} {step.name}: {step.what}{where}")
        if source:
            lines.append(f"                     | {source}")
    return lines


def format_conflicts(run: Any) -> list[str]:
    """Accesses to the same location by different threads, at least one a write, that
    interleaved: the race behind the failure."""
    sched = run.sched
    if sched is None or not sched.accesses:
        return []
    names = {**sched.names, **{actor.id: actor.name for actor in sched.actors.values()}}
    by_key: dict[int, list[Any]] = {}
    for actor, access in sched.accesses:
        if not access.sync:
            by_key.setdefault(access.key, []).append((actor, access))
    lines: list[str] = []
    for seq in by_key.values():
        actors = {a for a, _ in seq}
        if len(actors) < 2 or not any(acc.write for _, acc in seq):
            continue
        # interleaved: some actor touches it, another one writes, the first touches it again
        interleaved = any(
            seq[i][0] == seq[k][0] and any(seq[j][0] != seq[i][0] and
                                           (seq[j][1].write or seq[i][1].write)
                                           for j in range(i + 1, k))
            for i in range(len(seq)) for k in range(i + 2, len(seq)))
        if not interleaved:
            continue
        what = max((acc.what for _, acc in seq), key=lambda text: not text.startswith("."))
        story = _explain(seq, what, names)
        if story:
            lines.append(f"  {story}")
        parts = []
        for actor, access in seq:
            verb = "wrote" if access.write else "read"
            parts.append(f"{names.get(actor, actor)} {verb} it{_at(access)}")
        lines.append(f"  {what}: " + ", then ".join(parts))
    return lines


def _at(access: Any) -> str:
    loc = access.where
    return f" at {short_path(loc[0])}:{loc[1]}" if loc else ""


def _explain(seq: list[Any], what: str, names: dict[int, str]) -> str:
    """The order that matters, in one sentence: a lost update or a stale re-read."""
    for i, (first, read) in enumerate(seq):
        if read.write:
            continue
        for j in range(i + 1, len(seq)):
            other, write = seq[j]
            if other == first or not write.write:
                continue
            for k in range(j + 1, len(seq)):
                again, later = seq[k]
                if again != first:
                    continue
                a, b = names.get(first, str(first)), names.get(other, str(other))
                if later.write:
                    return (f"{a} read {what}{_at(read)}, then {b} wrote it{_at(write)} before "
                            f"{a} wrote it back{_at(later)}: {b}'s update was lost.")
                return (f"{a} read {what}{_at(read)}, then {b} wrote it{_at(write)} before {a} "
                        f"read it again{_at(later)}: the two reads disagree.")
    return ""


def format_report(name: str, trace: Any, error: BaseException, token: str,
                  result: ExplorationResult, replay_hint: str | None, *,
                  found_at: int | None = None, confirmed: bool = True,
                  replayed: bool = False) -> str:
    if replayed:
        head = f"plait replayed a token on {name}, and the test fails."
    else:
        head = (f"plait found an interleaving that fails {name} "
                f"(execution {found_at} of {result.executions}, strategy {result.strategy}).")
    lines = [head, "", "Steps, in the order they ran (t is virtual time in seconds):"]
    if isinstance(trace, StepTrace):
        lines.extend(format_steps(trace))
        threads = trace.threads
        if threads is not None and any(s.actor != 1 for s in threads.steps or []):
            lines += ["", "Threads (the event loop's thread is one of them):"]
            lines.extend(format_thread_steps(threads))
        conflicts = format_conflicts(threads) if threads is not None else []
        if conflicts:
            lines += ["", "Conflicting accesses (same location, different tasks or threads, "
                      "at least one write, interleaved):", *conflicts]
    else:
        lines.extend(format_thread_steps(trace))
        conflicts = format_conflicts(trace)
        if conflicts:
            lines += ["", "Conflicting accesses (same location, different tasks or threads, "
                      "at least one write, interleaved):", *conflicts]
    lines.append("")
    if isinstance(error, Deadlock):
        lines.append(str(error))
    else:
        message = str(error)
        lines.append(f"Then {type(error).__name__}{': ' + message if message else ''}"
                     f"{_failing_line(error)}")
    lines.extend(f"Note: {note}" for note in result.notes)
    if not confirmed:
        lines.append("Note: the steps above come from a replay that did not fail the same way.")
    lines += ["", "Replay exactly this interleaving with", f'    @plait.replay("{token}")']
    if replay_hint:
        lines.append(f"or  {replay_hint} --plait-replay={token}")
    return "\n".join(lines)
