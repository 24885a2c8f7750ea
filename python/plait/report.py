"""The failure report: the interleaving step by step, the error, and how to replay it."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from plait._paths import is_library_file, short_path
from plait.errors import Deadlock
from plait.timeline import Timeline, at, build

if TYPE_CHECKING:
    from plait.result import ExplorationResult


def format_timeline(timeline: Timeline) -> list[str]:
    """The steps of every task and thread, one numbered sequence."""
    lines: list[str] = []
    for entry in timeline.entries:
        lines.extend(f"        ({note})" for note in entry.notes)
        where = ""
        if entry.kind == "thread" and entry.where is not None:
            where = f" at {short_path(entry.where[0])}:{entry.where[1]} in {entry.where[2]}"
        lines.append(f"  {entry.number:>3}  t={entry.clock:<7.4f} {entry.actor_name}: "
                     f"{entry.what}{where}")
        source = entry.source
        if source:
            lines.append(f"                     | {source}")
    return lines


def format_conflicts(timeline: Timeline) -> list[str]:
    """Accesses to the same location by different actors, at least one a write, that
    interleaved: the race behind the failure (step numbers refer to the timeline)."""
    lines: list[str] = []
    for conflict in timeline.conflicts:
        if conflict.story:
            lines.append(f"  {conflict.story}")
        parts = []
        for touch in conflict.touches:
            verb = "wrote" if touch.write else "read"
            step = f" (step {touch.entry})" if touch.entry is not None else ""
            parts.append(f"{touch.actor_name} {verb} it{at(touch.where)}{step}")
        lines.append(f"  {conflict.what}: " + ", then ".join(parts))
    return lines


def _failing_line(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not is_library_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {short_path(frame.filename)}:{frame.lineno}: {(frame.line or '').strip()}"


def format_report(name: str, trace: Any, error: BaseException, token: str,
                  result: ExplorationResult, replay_hint: str | None, *,
                  found_at: int | None = None, confirmed: bool = True,
                  replayed: bool = False) -> str:
    if replayed:
        head = f"plait replayed a token on {name}, and the test fails."
    else:
        head = (f"plait found an interleaving that fails {name} "
                f"(execution {found_at} of {result.executions}, strategy {result.strategy}).")
    timeline = build(trace)
    lines = [head, "", "Steps, in the order they ran, of every task and thread "
             "(t is virtual time in seconds):", *format_timeline(timeline)]
    conflicts = format_conflicts(timeline)
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
