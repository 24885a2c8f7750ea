"""The options of a cooperative run and their names: the lowest layer of the plugin.

The pytest plugin (:mod:`.plugin`) resolves them from the command line and ini; the
engine (:mod:`._engine`, :mod:`._xdist`) reads them. Both import this module, and it
imports neither, so the plugin can import the engine lazily without a cycle.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

MARKER = "plait_cooperative"
PEER_MARKER = "asyncio_cooperative"
DEFAULT_MAX_TASKS = 100
# Ten minutes, as pytest-asyncio-cooperative's --asyncio-task-timeout: long enough for a
# slow integration test never to be cut short on a loaded CI machine, while a hang is
# still reported (with where it was suspended) instead of stalling the run for ever.
DEFAULT_TIMEOUT = 600.0
MODES = ("strict", "auto")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The options of a cooperative run, resolved from the command line and ini."""

    mode: str
    max_tasks: int
    timeout: float
    markers: tuple[str, ...]
    asyncio_auto: bool
    concurrent_fixtures: bool = False


def marker_kwarg(item: Any, name: str, default: Any) -> Any:
    """``name=`` of the closest plait_cooperative (or alias) marker of ``item``."""
    for marker in item.iter_markers():  # closest first
        if marker.name in (MARKER, PEER_MARKER) and name in marker.kwargs:
            return marker.kwargs[name]
    return default


# Set on an item while plait runs it cooperatively (plait then answers pytest-timeout's
# timer hooks for it).
RUNNING_KEY = pytest.StashKey[bool]()
# pytest-timeout's settings for that item, handed over by its pytest_timeout_set_timer
# hook, so that no signal or timer thread is set for it.
PYTEST_TIMEOUT_KEY = pytest.StashKey[Any]()
