"""The errors a concurrent call can end with, besides the ones the called function raises."""

from __future__ import annotations


class ConcurrentCallError(Exception):
    """Base class of the errors plait.concurrent reports itself."""


class CallTimedOut(ConcurrentCallError):
    """The call did not finish within its timeout and was stopped."""


class WorkerDied(ConcurrentCallError):
    """The worker process running the call exited before sending a result."""


class RemoteError(ConcurrentCallError):
    """Stands in for an exception from a worker process that could not be pickled back.

    ``type_name`` is the qualified name of the original exception's class.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str]]:
        return (RemoteError, (self.type_name, self.message))


class DatabaseNotVisible(ConcurrentCallError):
    """The concurrent calls could not see the test's database (say why and how to fix it)."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker process.

    Set as ``__cause__`` of the re-raised exception, as ``concurrent.futures`` does, so that
    pytest prints the worker's traceback above the local one.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip("\n")
