"""Which tests run cooperatively: markers on function, class, module; auto mode."""

from __future__ import annotations

import importlib.util

import pytest

HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None

# Each test records the largest number of tests running at once: 1 means they did not
# overlap (not cooperative), more means they did.
CONCURRENCY = """
import asyncio
import pytest

RUNNING = []
PEAK = [0]

async def overlap():
    RUNNING.append(1)
    PEAK[0] = max(PEAK[0], len(RUNNING))
    await asyncio.sleep(0.05)
    RUNNING.pop()
"""


def test_function_marker(pytester, ini):
    pytester.makepyfile(
        CONCURRENCY
        + """
@pytest.mark.plait_cooperative
async def test_a():
    await overlap()

@pytest.mark.plait_cooperative
async def test_b():
    await overlap()

def test_peak():
    pass
"""
    )
    pytester.makeconftest(
        """
def pytest_sessionfinish(session):
    import test_function_marker as m
    print("PEAK", m.PEAK[0])
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*PEAK 2*"])


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("class", id="class-decorator"),
        pytest.param("class-pytestmark", id="class-pytestmark"),
        pytest.param("module", id="module-pytestmark"),
    ],
)
def test_marker_on_class_or_module_is_honoured(pytester, ini, where):
    body = """
    async def test_a(self):
        await overlap()

    async def test_b(self):
        await overlap()
"""
    if where == "class":
        code = "@pytest.mark.plait_cooperative\nclass TestK:" + body
    elif where == "class-pytestmark":
        code = "class TestK:\n    pytestmark = pytest.mark.plait_cooperative\n" + body
    else:
        code = "pytestmark = pytest.mark.plait_cooperative\nclass TestK:" + body
    pytester.makepyfile(test_mod=CONCURRENCY + code)
    pytester.makeconftest(
        """
def pytest_sessionfinish(session):
    import test_mod
    print("PEAK", test_mod.PEAK[0])
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PEAK 2*"])


def test_unmarked_async_test_is_left_alone_in_strict_mode(pytester, ini):
    pytester.makepyfile(
        """
import pytest

async def test_unmarked():
    pass

@pytest.mark.plait_cooperative
async def test_marked():
    pass
"""
    )
    result = pytester.runpytest()
    # pytest itself refuses the unmarked coroutine: not ours to run.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert "test_unmarked" in result.stdout.str()


@pytest.mark.parametrize("how", ["ini", "cli"])
def test_auto_mode(pytester, ini, how):
    pytester.makepyfile(
        test_auto=CONCURRENCY
        + """
async def test_a():
    await overlap()

async def test_b():
    await overlap()

@pytest.fixture
async def value():
    return 42

def test_sync_with_async_fixture(value):
    assert value == 42

def test_plain_sync():
    pass
"""
    )
    pytester.makeconftest(
        """
def pytest_sessionfinish(session):
    import test_auto
    print("PEAK", test_auto.PEAK[0])
"""
    )
    args = ["-s"]
    if how == "ini":
        ini(plait_cooperative_mode="auto")
    else:
        args.append("--plait-cooperative-mode=auto")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*PEAK 2*"])


def test_sync_test_with_async_fixture_when_marked(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

@pytest.fixture
async def agen():
    await asyncio.sleep(0)
    yield "v"

@pytest.mark.plait_cooperative
def test_sync(agen):
    assert agen == "v"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.skipif(not HAS_PYTEST_ASYNCIO, reason="needs pytest-asyncio")
def test_beside_pytest_asyncio(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest
import pytest_asyncio

pytestmark = pytest.mark.plait_cooperative

@pytest_asyncio.fixture
async def thing():
    yield asyncio.get_running_loop()

async def test_ours(thing):
    assert thing is asyncio.get_running_loop()

@pytest.mark.asyncio
async def test_theirs(thing):
    # closest marker wins: pytest-asyncio runs this one, on its own loop
    assert thing is asyncio.get_running_loop()

@pytest.mark.asyncio
async def test_theirs_unmarked_module():
    await asyncio.sleep(0)
"""
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)


@pytest.mark.skipif(not HAS_PYTEST_ASYNCIO, reason="needs pytest-asyncio")
def test_our_marker_wins_over_pytest_asyncio_auto_mode(pytester, ini):
    ini(asyncio_mode="auto")
    pytester.makepyfile(
        test_auto_asyncio=CONCURRENCY
        + """
pytestmark = pytest.mark.plait_cooperative

async def test_a():
    await overlap()

async def test_b():
    await overlap()
"""
    )
    pytester.makepyfile(
        test_theirs="""
import asyncio

async def test_theirs():
    await asyncio.sleep(0)
"""
    )
    pytester.makeconftest(
        """
def pytest_sessionfinish(session):
    import test_auto_asyncio
    print("PEAK", test_auto_asyncio.PEAK[0])
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*PEAK 2*"])


def test_marker_documented_in_markers_list(pytester, ini):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*plait_cooperative(timeout=None, concurrent_fixtures=None)*"])
