"""A plugin whose hook raises while plait drives a cooperative test breaks that test only.

The test is reported with the plugin's traceback, its fixtures are torn down (the lock
it held is released: the ten tests waiting for it pass), and the run goes on: no
INTERNALERROR.
"""

from __future__ import annotations

import pytest

SUITE = """
import asyncio
import pytest
from plait.cooperative import Lock

lock = Lock()
pytestmark = pytest.mark.plait_cooperative


@pytest.fixture
async def locked():
    async with lock:
        yield
    print("RELEASED")


async def test_victim(locked):
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("i", range(10))
async def test_waits(i, locked):
    await asyncio.sleep(0.001)
"""

PLUGINS = {
    "makereport": """
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.name == "test_victim" and call.when == "call":
        raise RuntimeError("the plugin's makereport broke")
    return report
""",
    "logreport": """
def pytest_runtest_logreport(report):
    if report.nodeid.endswith("test_victim") and report.when == "call" and report.passed:
        raise RuntimeError("the plugin's logreport broke")
""",
    "logstart": """
def pytest_runtest_logstart(nodeid):
    if nodeid.endswith("test_victim"):
        raise RuntimeError("the plugin's logstart broke")
""",
    "protocol-enter": """
@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item):
    if item.name == "test_victim":
        raise RuntimeError("the plugin's protocol wrapper broke")
    return (yield)
""",
    "protocol-exit": """
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item):
    yield
    if item.name == "test_victim":
        raise RuntimeError("the plugin's protocol wrapper broke")
""",
    "setup": """
def pytest_runtest_setup(item):
    if item.name == "test_victim":
        raise RuntimeError("the plugin's runtest_setup broke")
""",
    "teardown": """
def pytest_runtest_teardown(item):
    if item.name == "test_victim":
        raise RuntimeError("the plugin's runtest_teardown broke")
""",
}

# (outcomes, whether the victim got as far as taking the lock)
EXPECTED = {
    "makereport": ({"passed": 10, "failed": 1}, True),
    # plugins before the broken one saw the passed report; then the failure is logged
    "logreport": ({"passed": 11, "failed": 1}, True),
    "logstart": ({"passed": 10, "errors": 1}, False),
    "protocol-enter": ({"passed": 10, "errors": 1}, False),
    "protocol-exit": ({"passed": 11, "errors": 1}, True),
    "setup": ({"passed": 10, "errors": 1}, False),
    "teardown": ({"passed": 11, "errors": 1}, True),
}


@pytest.mark.parametrize("hook", sorted(PLUGINS))
def test_a_plugin_raising_fails_only_its_test(pytester, ini, hook):
    pytester.makeconftest("import pytest\n" + PLUGINS[hook])
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-rA", "-s")
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    outcomes, took_lock = EXPECTED[hook]
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(["*RuntimeError: the plugin's * broke*"])
    result.stdout.re_match_lines([r"(FAILED|ERROR) \S+::test_victim( - |$)"])
    # the victim's fixtures were torn down (its lock released) whenever it took them
    assert output.count("RELEASED") == 10 + took_lock
