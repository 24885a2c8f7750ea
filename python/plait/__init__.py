"""plait: explore the interleavings of asyncio tasks and threads, and replay the failing one.

The public surface mirrors what Python developers already use: decorate a test with
:func:`explore`, replay a failure with :func:`replay`, add explicit scheduling points with
:func:`point`. The engine (``plait._native``) is private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names, resolved lazily so that `import plait` (and the pytest plugin) stays cheap.
_LAZY = {
    "explore": "plait.api",
    "replay": "plait.api",
    "point": "plait.api",
    "read": "plait.api",
    "write": "plait.api",
    "RaceWarning": "plait.races",
    "ExplorationResult": "plait.api",
    "InterleavingFailure": "plait.errors",
    "ReplayDivergence": "plait.errors",
    "ConfigError": "plait.errors",
    "PlaitError": "plait.errors",
    "call_concurrently": "plait.concurrent",
    "make_concurrent_calls": "plait.concurrent",
}

__all__ = [
    "ConfigError", "ExplorationResult", "InterleavingFailure", "PlaitError", "RaceWarning",
    "ReplayDivergence", "__version__", "call_concurrently", "explore", "make_concurrent_calls",
    "point", "read", "replay", "write",
]

if TYPE_CHECKING:  # pragma: no cover
    from plait.api import ExplorationResult, explore, point, read, replay, write
    from plait.concurrent import call_concurrently, make_concurrent_calls
    from plait.errors import ConfigError, InterleavingFailure, PlaitError, ReplayDivergence
    from plait.races import RaceWarning


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plait' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
