"""Live progress of a long exploration, on pytest's terminal.

An exploration that has run for more than ``after`` seconds (1 by default;
``PLAIT_PROGRESS_AFTER`` changes it) shows one line that it rewrites in place: executions,
distinct traces, executions per second, elapsed time against the budget, and the strategy
phase. When it ends, the line is left with its final figures. Nothing is shown when the
output is not a terminal, under ``-q``, or in an xdist worker (the controller shows the
results). The line is written with pytest's capturing suspended, so it never lands inside a
test's captured output.
"""

from __future__ import annotations

import os
import time
from typing import Any


def _after() -> float:
    try:
        return max(0.0, float(os.environ.get("PLAIT_PROGRESS_AFTER", "1")))
    except ValueError:
        return 1.0


class Progress:
    """Told about the exploration between executions; draws at most 4 times a second."""

    interval = 0.25

    def __init__(self, terminal: Any, capture: Any, name: str) -> None:
        self.terminal = terminal
        self.capture = capture
        self.name = name
        self.after = _after()
        self.started = time.monotonic()
        self.next_draw = self.started + self.after
        self.shown = False
        self.last = ""

    def due(self) -> bool:
        return time.monotonic() >= self.next_draw

    def update(self, phase: str, executions: int, distinct: int, budget_executions: int,
               budget_seconds: float | None, *, workers: int = 1) -> None:
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + self.interval
        self._draw(self._line(phase, executions, distinct, budget_executions, budget_seconds,
                              now, workers))

    def _line(self, phase: str, executions: int, distinct: int, budget_executions: int,
              budget_seconds: float | None, now: float, workers: int) -> str:
        elapsed = now - self.started
        rate = executions / elapsed if elapsed > 0 else 0.0
        budget = f" of {budget_seconds:g}s" if budget_seconds is not None else ""
        on = f", {workers} workers" if workers > 1 else ""
        return (f"plait: {self.name}: {phase}{on}: {executions}/{budget_executions} executions, "
                f"{distinct} distinct, {rate:.0f}/s, {elapsed:.1f}s{budget}")

    def done(self, summary: str) -> None:
        """The exploration ended: one final line, if the live line was shown."""
        if not self.shown:
            return
        elapsed = time.monotonic() - self.started
        self._draw(f"plait: {self.name}: {summary} in {elapsed:.1f}s", final=True)

    def _draw(self, line: str, final: bool = False) -> None:
        width = max(20, int(getattr(self.terminal._tw, "fullwidth", 80)) - 1)
        line = line[:width]
        with self._uncaptured():
            if not self.shown:
                self.terminal.write("\n")
                self.shown = True
            self.terminal.rewrite(line + " " * max(0, len(self.last) - len(line)))
            if final:
                self.terminal.write("\n")
            self.terminal.flush()
        self.last = line

    def _uncaptured(self) -> Any:
        if self.capture is None:
            import contextlib

            return contextlib.nullcontext()
        return self.capture.global_and_fixture_disabled()


def for_item(item: Any) -> Progress | None:
    """A progress display for a pytest item, or None when progress must stay quiet."""
    config = item.config
    if hasattr(config, "workerinput"):  # an xdist worker: its output is not a terminal
        return None
    if config.getoption("verbose", 0) < 0:
        return None
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None or not terminal.isatty():
        return None
    capture = config.pluginmanager.get_plugin("capturemanager")
    return Progress(terminal, capture, item.name)
