"""Cooperative test runs: many I/O-bound async tests at once, on one event loop.

Mark a test, class or module with ``@pytest.mark.plait_cooperative`` (or set
``plait_cooperative_mode = auto``) and plait runs those tests as tasks on a single
asyncio loop, with pytest's own fixtures, reports and plugins. The pytest plugin lives
in :mod:`plait.cooperative.plugin`; this package holds what test code imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from plait.cooperative._lock import Lock


def __getattr__(name: str) -> Any:
    # Lazily: the pytest plugin imports this package, and asyncio is not cheap.
    if name == "Lock":
        from plait.cooperative._lock import Lock

        globals()["Lock"] = Lock
        return Lock
    raise AttributeError(f"module 'plait.cooperative' has no attribute {name!r}")


class PlaitCooperativeWarning(UserWarning):
    """Something in a cooperative run is probably shared between concurrent tests."""


__all__ = ["Lock", "PlaitCooperativeWarning"]
