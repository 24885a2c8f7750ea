"""What an exploration did (:class:`ExplorationResult`): the figures pytest's summary prints,
whether the search was exhausted, and the failure if any. The runner fills it; the reports,
the plugin and the API read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from plait.errors import InterleavingFailure


@dataclass
class ExplorationResult:
    """What an exploration did: the figures pytest's summary prints, and the failure if any."""

    name: str
    strategy: str
    executions: int = 0
    exhausted: bool = False
    bounded: bool = False
    stopped_by: str = ""
    elapsed: float = 0.0
    steps: int = 0
    redundant: int = 0  # dpor: executions that could only repeat a known trace
    failure: InterleavingFailure | None = None
    failed_at: int | None = None
    notes: list[str] = field(default_factory=list)
    races: int = 0  # data races warned about after the exploration (races="warn")
    html: list[str] = field(default_factory=list)  # HTML timelines written (--plait-html)

    def summary(self) -> str:
        plural = "" if self.executions == 1 else "s"
        failed = self.failure is not None or self.failed_at is not None
        text = f"{self.executions} execution{plural}"
        if self.redundant:
            text += f" ({self.redundant} of them redundant)"
        text += f", {self.strategy}, "
        if self.strategy == "replay":
            text += "replayed a token"
        elif self.exhausted:
            text += "exhausted" + (" within the bound" if self.bounded else "")
            if self.races:
                # exhausted says every schedule passed, not that the program is safe
                text += f", but {self.races} data race(s) warned: not proven safe"
        elif failed and self.stopped_by == "failure":
            text += "stopped at the first failure"
        else:
            text += "not exhausted (" + {"budget": "execution budget spent",
                                         "time": "time budget spent"}.get(
                self.stopped_by, self.stopped_by or "budget spent") + ")"
        if failed:
            text += ", FAILED" + (f" (execution {self.failed_at})" if self.failed_at else "")
        return text

    @property
    def distinct(self) -> int:
        """Executions minus the redundant ones: with dpor, one per Mazurkiewicz trace."""
        return self.executions - self.redundant
