"""The exceptions plait raises: each carries what a user needs to act on it."""

from __future__ import annotations

from typing import Any


class PlaitError(Exception):
    """Base class of plait's own errors."""


class ConfigError(PlaitError, ValueError):
    """A plait option or decorator argument is wrong; the message names it and what is accepted."""


class InterleavingFailure(AssertionError):
    """The test failed under one interleaving that plait found.

    ``report`` is the step-by-step explanation, ``token`` replays the schedule exactly
    (``@plait.replay(token)`` or ``pytest --plait-replay=TOKEN``), ``stats`` describes the
    exploration that found it. The original exception is the ``__cause__``.
    """

    def __init__(self, report: str, token: str, stats: dict[str, object]) -> None:
        super().__init__(report)
        self.report = report
        self.token = token
        self.stats = stats
        self.result: Any = None  # the ExplorationResult, set by the runner


class ReplayDivergence(PlaitError, RuntimeError):
    """A replayed schedule did not fit the program: it behaved differently than when recorded."""


class Nondeterminism(PlaitError, RuntimeError):
    """The same schedule produced different choices: the code uses a source of
    nondeterminism plait does not control (real time, os.urandom, uncontrolled threads, I/O)."""


class Deadlock(PlaitError, RuntimeError):
    """Every actor is blocked and nothing plait controls can wake any of them.

    ``actors``: (name, what it holds, what it waits for, where) of each blocked actor."""

    actors: list[tuple[str, str, str, Any]] = []


class NeverAwaited(PlaitError, RuntimeError):
    """A coroutine was created in an explored test and never awaited: its code never ran."""


class OwnEventLoop(ConfigError):
    """A plain ``def`` explored test ran an event loop of its own."""
