"""Cooperative test runs: many I/O-bound async tests at once, on one event loop.

Mark a test, class or module with ``@pytest.mark.plait_cooperative`` (or set
``plait_cooperative_mode = auto``) and plait runs those tests as tasks on a single
asyncio loop, with pytest's own fixtures, reports and plugins. The pytest plugin lives
in :mod:`plait.cooperative.plugin`; this package holds what test code imports.
"""

from __future__ import annotations

from plait.cooperative._lock import Lock


class PlaitCooperativeWarning(UserWarning):
    """Something in a cooperative run is probably shared between concurrent tests."""


__all__ = ["Lock", "PlaitCooperativeWarning"]
