"""Independent async fixtures of one test set up at the same time, when asked for.

pytest-asyncio-cooperative users keep slow fixtures within the timeout this way. Off by
default: fixtures are set up one after the other, in pytest's order.
"""

from __future__ import annotations

import pytest

SUITE = """
import asyncio
import pytest

EVENTS = []


async def slow(name):
    EVENTS.append(f"{name} start")
    await asyncio.sleep(0.1)
    EVENTS.append(f"{name} ready")
    return name


@pytest.fixture
async def first():
    value = await slow("first")
    yield value
    EVENTS.append("first down")


@pytest.fixture
async def second():
    value = await slow("second")
    yield value
    EVENTS.append("second down")


@pytest.fixture
async def after_first(first):
    return await slow("after_first")


@pytest.fixture
def plain():
    return "plain"


@pytest.mark.plait_cooperative{marker_args}
async def test_uses_them(first, second, after_first, plain, request):
    assert (first, second, after_first, plain) == ("first", "second", "after_first", "plain")
    assert request.node.name == "test_uses_them"
    print("EVENTS", EVENTS)
"""


def events(result: pytest.RunResult) -> list[str]:
    line = next(line for line in result.stdout.lines if line.startswith("EVENTS"))
    return eval(line[len("EVENTS ") :])  # the list the inner test printed


@pytest.mark.parametrize(
    ("args", "options", "marker_args"),
    [
        (["--plait-cooperative-concurrent-fixtures"], {}, ""),
        ([], {"plait_cooperative_concurrent_fixtures": "true"}, ""),
        ([], {}, "(concurrent_fixtures=True)"),
    ],
    ids=["cli", "ini", "marker"],
)
def test_independent_fixtures_overlap(pytester, ini, args, options, marker_args):
    ini(**options)
    pytester.makepyfile(SUITE.replace("{marker_args}", marker_args))
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    seen = events(result)
    # first and second waited at the same time; after_first waited for first
    assert seen.index("second start") < seen.index("first ready")
    assert seen.index("after_first start") > seen.index("first ready")


def test_off_by_default_in_pytest_order(pytester, ini):
    pytester.makepyfile(SUITE.replace("{marker_args}", ""))
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert events(result) == [
        "first start",
        "first ready",
        "second start",
        "second ready",
        "after_first start",
        "after_first ready",
    ]


BROKEN = """
import asyncio
import pytest

@pytest.fixture
async def good():
    await asyncio.sleep(0.05)
    yield "good"
    print("GOOD TORN DOWN")


@pytest.fixture
async def bad():
    await asyncio.sleep(0.01)
    raise RuntimeError("bad fixture")


@pytest.fixture
async def hangs():
    await asyncio.Event().wait()


@pytest.mark.plait_cooperative(concurrent_fixtures=True)
async def test_broken(good, bad):
    pass


@pytest.mark.plait_cooperative(concurrent_fixtures=True, timeout=0.3)
async def test_times_out(good, hangs):
    pass
"""


def test_errors_and_timeouts_tear_down_what_was_set_up(pytester, ini):
    pytester.makepyfile(BROKEN)
    result = pytester.runpytest("-s")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*RuntimeError: bad fixture*"])
    result.stdout.fnmatch_lines(["*Timeout: the setup of the test took longer*"])
    assert result.stdout.str().count("GOOD TORN DOWN") == 2
