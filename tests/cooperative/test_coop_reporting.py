"""Reports as pytest makes them: durations, JUnit XML, -x, assertion messages, plugins."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET

import pytest


def test_real_durations_in_terminal_and_junit_xml(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.fixture
async def slow_setup():
    await asyncio.sleep(0.3)

async def test_long(slow_setup):
    await asyncio.sleep(0.6)

async def test_short():
    await asyncio.sleep(0.05)
"""
    )
    result = pytester.runpytest("--junitxml=junit.xml", "--durations=0", "-vv")
    result.assert_outcomes(passed=2)
    durations = {
        (line.split()[1], line.split()[2].split("::")[-1]): float(line.split()[0][:-1])
        for line in result.stdout.lines
        if line[:1].isdigit() and line.split()[0].endswith("s") and "::" in line
    }
    assert durations[("call", "test_long")] >= 0.6
    assert durations[("setup", "test_long")] >= 0.3
    assert durations[("call", "test_short")] >= 0.05
    cases = {
        case.get("name"): float(case.get("time"))
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    }
    assert 0.85 <= cases["test_long"] < 3
    assert 0.05 <= cases["test_short"] < 2


FAILING = """
import asyncio
import os
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.fixture(scope="module")
def resource():
    yield
    open(os.path.join(os.path.dirname(__file__), "torn-down"), "w").close()

async def test_fails_first(resource):
    await asyncio.sleep(0.05)
    assert 1 == 2

@pytest.mark.parametrize("i", range(10))
async def test_later(i, resource):
    await asyncio.sleep(0.3)
"""


@pytest.mark.parametrize("flag", ["-x", "--maxfail=1"])
def test_exitfirst_stops_scheduling_new_tests(pytester, ini, flag):
    pytester.makepyfile(FAILING)
    result = pytester.runpytest(flag, "--plait-cooperative-max-tasks=2")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    # the one running beside the failure may finish; nothing new starts
    assert outcomes.get("passed", 0) <= 1
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    # the tests that never ran no longer hold the module fixture
    assert (pytester.path / "torn-down").exists()


def test_assertion_rewriting_and_failure_message(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

@pytest.mark.plait_cooperative
async def test_compare():
    value = {"a": 1, "b": [1, 2]}
    await asyncio.sleep(0)
    assert value == {"a": 1, "b": [1, 3]}
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*async def test_compare():*",
            ">*assert value == {*",
            "E*AssertionError: assert {*} == {*}*",
            "*test_assertion_rewriting_and_failure_message.py:8: AssertionError",
        ]
    )
    assert "_engine.py" not in result.stdout.str()


def test_non_cooperative_tests_still_run_normally(pytester, ini):
    pytester.makepyfile(
        """
import pytest

@pytest.fixture(scope="module")
def shared():
    return []

def test_sync_one(shared):
    shared.append(1)

def test_sync_two(shared):
    assert shared == [1]

@pytest.mark.plait_cooperative
async def test_coop():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.skipif(
    importlib.util.find_spec("pytest_rerunfailures") is None, reason="needs pytest-rerunfailures"
)
def test_reruns_with_pytest_rerunfailures(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

ATTEMPTS = {}

@pytest.fixture
async def counted(request):
    ATTEMPTS[request.node.name] = ATTEMPTS.get(request.node.name, 0) + 1
    yield ATTEMPTS[request.node.name]

@pytest.mark.plait_cooperative
async def test_flaky(counted):
    await asyncio.sleep(0.01)
    assert counted >= 3

@pytest.mark.plait_cooperative
async def test_always_fails(counted):
    assert False

@pytest.mark.plait_cooperative
@pytest.mark.flaky(reruns=1)
async def test_marker(counted):
    assert counted == 2
"""
    )
    result = pytester.runpytest("--reruns=2")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (2, 1, 5)
    # --rerun-except: an AssertionError is not rerun
    result = pytester.runpytest("--reruns=2", "--rerun-except=AssertionError")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed", 0), outcomes["failed"], outcomes.get("rerun", 0)) == (0, 3, 0)


@pytest.mark.skipif(importlib.util.find_spec("hypothesis") is None, reason="needs hypothesis")
def test_hypothesis_sync_and_async(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest
from hypothesis import Phase, given, settings, strategies as st

pytestmark = pytest.mark.plait_cooperative

@settings(max_examples=20, deadline=None)
@given(st.integers())
async def test_async_property(x):
    await asyncio.sleep(0)
    assert isinstance(x, int)

@settings(max_examples=20, deadline=None)
@given(st.integers())
def test_sync_property(x):
    assert x + 0 == x

# Hypothesis's explain phase lists lines "only run by failing test cases", plait's among
# them; this test is about tracebacks, so leave that phase out.
@settings(max_examples=50, deadline=None, phases=[p for p in Phase if p is not Phase.explain])
@given(st.integers(min_value=0))
async def test_async_finds_bug(x):
    await asyncio.sleep(0)
    assert x < 10
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_async_finds_bug(*", "*x=10*"])
    assert "_engine.py" not in result.stdout.str()


@pytest.mark.skipif(importlib.util.find_spec("hypothesis") is None, reason="needs hypothesis")
def test_hypothesis_health_check_sees_our_fixtures(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytestmark = pytest.mark.plait_cooperative

@settings(max_examples=5, deadline=None)
@given(st.integers())
async def test_function_fixture(tmp_path, x):
    await asyncio.sleep(0)

@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers())
async def test_suppressed(tmp_path, x):
    assert tmp_path.exists()
"""
    )
    result = pytester.runpytest()
    # as under plain pytest: the health check fails the first, teardown is clean
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*uses a function-scoped fixture 'tmp_path'*"])
    assert "_engine.py" not in result.stdout.str()
    assert "cooperative/_fixtures.py" not in result.stdout.str()


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist")
def test_xdist_workers_run_their_share_cooperatively(pytester, ini):
    pytester.makepyfile(
        test_xd="""
import asyncio
import os
import pytest

RUNNING = []
HERE = os.path.dirname(__file__)

@pytest.fixture(scope="module")
async def shared():
    yield object()

@pytest.mark.plait_cooperative
@pytest.mark.parametrize("i", range(20))
async def test_sleep(shared, i, capsys):
    RUNNING.append(i)
    with open(os.path.join(HERE, f"peak-{os.getpid()}-{i}"), "w") as f:
        f.write(str(len(RUNNING)))
    print(i)
    await asyncio.sleep(0.3)
    RUNNING.remove(i)
    assert capsys.readouterr().out == f"{i}\\n"

def test_sync():
    pass

@pytest.mark.plait_cooperative
async def test_fails():
    assert 0
"""
    )
    # (Hypothesis' plugin alone costs seconds per xdist worker: keep it out.)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=21, failed=1)
    peak = max(int(p.read_text()) for p in pytester.path.glob("peak-*"))
    assert peak >= 2, "no worker ran two tests at once"


def test_warnings_are_reported_under_their_test(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import warnings
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.mark.parametrize("i", range(3))
async def test_warns(i):
    await asyncio.sleep(0.01 * (3 - i))
    if i == 1:
        warnings.warn(UserWarning("from one"))
"""
    )
    result = pytester.runpytest("-W", "always::UserWarning")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        ["*warnings summary*", "test_warnings*::test_warns[[]1[]]", "*from one*"]
    )


def test_filterwarnings_error_applies(pytester, ini):
    ini(filterwarnings="error")
    pytester.makepyfile(
        """
import warnings
import pytest

@pytest.mark.plait_cooperative
async def test_warns():
    warnings.warn(DeprecationWarning("old"))
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*DeprecationWarning: old*"])
