"""Helpers for the cooperative plugin tests: every test drives pytest through pytester.

The plugin is loaded from its installed ``pytest11`` entry point, as users get it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable

import pytest

HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None


def _asyncio_knows_loop_scope() -> bool:
    """pytest-asyncio >= 0.24 has (and warns without) asyncio_default_fixture_loop_scope."""
    if not HAS_PYTEST_ASYNCIO:
        return False
    major, minor = (int(p) for p in importlib.metadata.version("pytest-asyncio").split(".")[:2])
    return (major, minor) >= (0, 24)


@pytest.fixture
def ini(pytester: pytest.Pytester) -> Callable[..., None]:
    """Write the inner run's pytest.ini: quiet pytest-asyncio, plus ``options``."""

    def write(**options: object) -> None:
        lines = ["[pytest]"]
        if _asyncio_knows_loop_scope():
            lines.append("asyncio_default_fixture_loop_scope = function")
        lines += [f"{key} = {value}" for key, value in options.items()]
        pytester.makeini("\n".join(lines) + "\n")

    write()
    return write
