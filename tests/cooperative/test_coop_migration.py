"""A suite written for pytest-asyncio-cooperative runs unchanged under plait."""

from __future__ import annotations

import importlib.util

import pytest

PEER_INSTALLED = importlib.util.find_spec("pytest_asyncio_cooperative") is not None

PEER_SUITE = """
import asyncio
import importlib.util

import pytest

PEER_INSTALLED = importlib.util.find_spec("pytest_asyncio_cooperative") is not None
from plait.cooperative import Lock

my_lock = Lock()

@pytest.fixture
async def my_fixture():
    await asyncio.sleep(0.01)
    yield "XXX"
    await asyncio.sleep(0.01)

@pytest.fixture(scope="function")
async def lock():
    async with my_lock():
        yield

@pytest.mark.asyncio_cooperative
async def test_a(my_fixture):
    await asyncio.sleep(0.2)
    assert my_fixture == "XXX"

@pytest.mark.asyncio_cooperative
async def test_b(lock, my_fixture):
    await asyncio.sleep(0.2)
    assert my_fixture == "XXX"

@pytest.mark.asyncio_cooperative
class TestGrouped:
    async def test_c(self):
        await asyncio.sleep(0.2)
"""


@pytest.mark.skipif(PEER_INSTALLED, reason="the aliases are the peer's while it is installed")
def test_peer_marker_and_options(pytester, ini):
    ini(max_asyncio_tasks=10, asyncio_task_timeout=30)
    pytester.makepyfile(PEER_SUITE)
    result = pytester.runpytest("--max-asyncio-tasks=5", "--asyncio-task-timeout=20")
    result.assert_outcomes(passed=3)


@pytest.mark.skipif(PEER_INSTALLED, reason="simulates the peer; the real one is installed")
def test_peer_installed_keeps_its_names_and_we_warn(pytester, ini):
    # An importable pytest_asyncio_cooperative stands for the installed peer.
    pytester.makepyfile(pytest_asyncio_cooperative="")
    pytester.syspathinsert()
    pytester.makepyfile(
        """
import importlib.util

import pytest

PEER_INSTALLED = importlib.util.find_spec("pytest_asyncio_cooperative") is not None

@pytest.mark.plait_cooperative
async def test_ours():
    pass
"""
    )
    result = pytester.runpytest("-W", "always::plait.cooperative.PlaitCooperativeWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*pytest-asyncio-cooperative is installed*"])
    # its options are not registered by plait
    result = pytester.runpytest("--max-asyncio-tasks=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
