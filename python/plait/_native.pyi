"""Type stubs for plait's engine (``plait._native``, built from ``crates/plait-py``).

The engine answers one decision per scheduling point and never calls back into Python.
Decisions are numbered from 0 in each execution. An actor decision's default is ``current``
if it is in ``runnable``, else ``runnable[0]``; a choice's default is 0.
"""

from collections.abc import Iterable, Sequence
from typing import Final, Literal, TypedDict, final

__all__ = [
    "STRATEGIES",
    "TOKEN_VERSION",
    "ConfigError",
    "Explorer",
    "Nondeterminism",
    "ReplayDivergence",
    "TokenError",
    "decode_token",
]

STRATEGIES: Final[list[str]]
"""The accepted strategy names: ``["dfs", "dpor", "random", "pct", "replay"]``."""
TOKEN_VERSION: Final[int]
"""The token format this engine writes and reads (tokens start with ``plait<version>:``)."""

class TokenError(ValueError):
    """A token could not be decoded (not a plait token, another version, or damaged)."""

class ConfigError(ValueError):
    """The exploration's configuration is invalid; the message names the argument."""

class ReplayDivergence(RuntimeError):
    """The program stopped following the schedule of the token being replayed."""

class Nondeterminism(RuntimeError):
    """The program behaved differently under the same schedule."""

class _Stats(TypedDict):
    executions: int
    """Executions finished (``end_execution`` called)."""
    failures: int
    exhausted: bool
    """The strategy ran out of schedules (within the bounds when ``bounded``)."""
    bounded: bool
    """A preemption or delay bound cut off part of the space."""
    steps: int
    """Decisions made over all executions."""
    max_decisions: int
    """Most decisions made in one execution."""
    redundant: int
    """Executions that could only repeat an explored trace (dpor's sleep-set blocked ones;
    they still ran to the end). Always 0 for the other strategies."""
    elapsed: float
    """Seconds since the explorer was created."""
    strategy: str
    stopped_by: Literal["exhausted", "budget", "failure", "error"] | None
    """Why the exploration stopped; None while it can go on."""

class _DecodedToken(TypedDict):
    version: int
    strategy: str
    """Name of the strategy that recorded the schedule ("unknown" for a newer one)."""
    python_version: tuple[int, int]
    seed: int
    """The execution's seed."""
    decisions: int
    """Number of decisions the execution made."""
    settings: bytes
    deviations: list[tuple[int, int]]
    """(decision index, chosen actor id or choice index), increasing by decision."""

@final
class Explorer:
    """Drives one exploration::

        while explorer.start_execution():
            ...  # run the test body, calling choose_actor / choose / record_step
            explorer.end_execution(failed)

    Random and PCT explorations given neither ``max_executions`` nor ``max_seconds`` run
    1000 executions. In replay mode the token's seed, settings and Python version are used.
    """

    def __new__(
        cls,
        *,
        strategy: str = "dfs",
        seed: int = 0,
        max_executions: int | None = None,
        max_seconds: float | None = None,
        preemption_bound: int | None = None,
        delay_bound: int | None = None,
        pct_depth: int = 3,
        stop_on_first: bool = True,
        token: str | None = None,
        settings: bytes = ...,
        python_version: tuple[int, int] = ...,
        execution_offset: int = 0,
        execution_stride: int = 1,
    ) -> Explorer:
        """``execution_offset`` / ``execution_stride`` (random, pct): this explorer runs
        executions ``offset, offset + stride, ...`` of the seed sequence, so that several
        workers split one exploration's seeds."""
    def start_execution(self) -> bool:
        """Start the next execution; False when exhausted, the budget is spent, a failure
        stops the exploration (``stop_on_first``), or an engine error ended it."""
    def choose_actor(self, runnable: Sequence[int], current: int | None) -> int:
        """The actor to run next among ``runnable`` (non-empty, in default order)."""
    def choose(self, n: int) -> int:
        """A recorded non-scheduling choice in ``range(n)`` (``n >= 1``)."""
    def record_step(self, actor: int, accesses: Iterable[tuple[int, bool]]) -> None:
        """The footprint of the step ``actor`` just ran: ``(key, is_write)`` pairs."""
    def end_execution(self, failed: bool) -> None:
        """End the current execution; raises Nondeterminism / ReplayDivergence when the
        execution ended earlier than the schedule being followed."""
    def token(self) -> str:
        """The token of the current or last finished execution."""
    def execution_seed(self) -> int:
        """The seed of the current execution; seed ``random`` with it."""
    def stats(self) -> _Stats: ...
    def settings(self) -> bytes:
        """The settings in force (in replay mode, the token's)."""
    @property
    def decision(self) -> int:
        """Index of the next decision in the current execution."""

def decode_token(token: str) -> _DecodedToken:
    """Decode a token into its parts; raises TokenError with a message saying what is wrong."""
