"""What one concurrent call did: its value or its exception, and when it started."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NoReturn

Status = Literal["returned", "raised", "timed_out", "worker_died"]


@dataclasses.dataclass(frozen=True, eq=False)
class CallResult:
    """The outcome of one call. ``ok`` is true only when the function returned.

    When ``ok`` is false, ``exception`` is never ``None``: it is what the function raised,
    or a :class:`~plait.concurrent.CallTimedOut` / :class:`~plait.concurrent.WorkerDied`.
    """

    index: int  # position of the call in the order given; results come back in that order
    status: Status
    value: Any = None
    exception: BaseException | None = None
    traceback: str = ""  # formatted traceback, from the worker that ran the call
    started_at: float | None = None  # time.time() right after the barrier let the call go
    finished_at: float | None = None
    worker: str = ""  # "thread <ident>" or "process <pid>"

    @property
    def ok(self) -> bool:
        return self.status == "returned"

    @property
    def timed_out(self) -> bool:
        return self.status == "timed_out"

    @property
    def worker_died(self) -> bool:
        return self.status == "worker_died"

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def reraise(self) -> NoReturn:
        """Raise the call's exception (with the worker's traceback as its cause)."""
        if self.exception is None:
            raise ValueError(f"call #{self.index} returned normally: there is nothing to re-raise")
        raise self.exception

    def unwrap(self) -> Any:
        """Return the value, or raise the call's exception."""
        if self.ok:
            return self.value
        self.reraise()

    def __repr__(self) -> str:
        detail = repr(self.value) if self.ok else repr(self.exception)
        if len(detail) > 200:
            detail = detail[:197] + "..."
        return f"<CallResult #{self.index} {self.status} {detail} on {self.worker}>"


class CallResults(list[CallResult]):
    """The results of one batch of concurrent calls, in call order."""

    @property
    def start_spread(self) -> float:
        """Seconds between the first and the last call to start (0.0 if fewer than two did)."""
        starts = [r.started_at for r in self if r.started_at is not None]
        return max(starts) - min(starts) if len(starts) > 1 else 0.0

    @property
    def exceptions(self) -> list[BaseException]:
        return [r.exception for r in self if r.exception is not None]
