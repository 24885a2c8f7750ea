"""Helpers for the cooperative plugin tests: every test drives pytest through pytester.

The plugin is loaded from its installed ``pytest11`` entry point, as users get it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None


@pytest.fixture
def ini(pytester: pytest.Pytester) -> Callable[..., None]:
    """Write the inner run's pytest.ini: quiet pytest-asyncio, plus ``options``."""

    def write(**options: object) -> None:
        lines = ["[pytest]"]
        if HAS_PYTEST_ASYNCIO:
            lines.append("asyncio_default_fixture_loop_scope = function")
        lines += [f"{key} = {value}" for key, value in options.items()]
        pytester.makeini("\n".join(lines) + "\n")

    write()
    return write
