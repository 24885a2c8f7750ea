"""Running many tests at once: concurrency, max tasks, timeouts, idle CPU, interrupts."""

from __future__ import annotations

import sys
import time

import pytest

SLEEPERS = """
import asyncio
import pytest

@pytest.mark.plait_cooperative
@pytest.mark.parametrize("i", range({n}))
async def test_sleep(i):
    await asyncio.sleep({seconds})
"""


def test_twenty_half_second_tests_overlap(pytester, ini):
    pytester.makepyfile(SLEEPERS.format(n=20, seconds=0.5))
    began = time.perf_counter()
    result = pytester.runpytest()
    elapsed = time.perf_counter() - began
    result.assert_outcomes(passed=20)
    assert elapsed < 5, f"20 x 0.5 s took {elapsed:.1f} s: not concurrent"


PEAK = """
import asyncio
import pytest

RUNNING = []
PEAK = [0]

@pytest.mark.plait_cooperative
@pytest.mark.parametrize("i", range(8))
async def test_peak(i):
    RUNNING.append(i)
    PEAK[0] = max(PEAK[0], len(RUNNING))
    await asyncio.sleep(0.02)
    RUNNING.remove(i)
"""

PEAK_CONFTEST = """
def pytest_sessionfinish(session):
    import test_peak_mod
    print("PEAK", test_peak_mod.PEAK[0])
"""


@pytest.mark.parametrize(
    ("args", "options", "peak"),
    [
        (["--plait-cooperative-max-tasks=3"], {}, 3),
        ([], {"plait_cooperative_max_tasks": 2}, 2),
        (["--max-asyncio-tasks=1"], {}, 1),
        ([], {"max_asyncio_tasks": 4}, 4),
        (["--plait-cooperative-max-tasks=0"], {}, 8),
        # the plait option wins over the migration alias
        (["--plait-cooperative-max-tasks=2"], {"max_asyncio_tasks": 5}, 2),
    ],
    ids=["cli", "ini", "peer-cli", "peer-ini", "unlimited", "precedence"],
)
def test_max_tasks(pytester, ini, args, options, peak):
    ini(**options)
    pytester.makepyfile(test_peak_mod=PEAK)
    pytester.makeconftest(PEAK_CONFTEST)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([f"*PEAK {peak}*"])


TIMEOUTS = """
import asyncio
import pytest

@pytest.mark.plait_cooperative
async def test_slow():
    await asyncio.sleep(30)

@pytest.mark.plait_cooperative
async def test_quick():
    await asyncio.sleep(0.01)

@pytest.fixture
async def slow_fixture():
    await asyncio.sleep(30)

@pytest.mark.plait_cooperative
async def test_slow_setup(slow_fixture):
    pass
"""


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["--plait-cooperative-timeout=0.3"], {}),
        ([], {"plait_cooperative_timeout": 0.3}),
        (["--asyncio-task-timeout=0.3"], {}),
        ([], {"asyncio_task_timeout": 0.3}),
    ],
    ids=["cli", "ini", "peer-cli", "peer-ini"],
)
def test_timeout_fails_with_a_clear_message(pytester, ini, args, options):
    ini(**options)
    pytester.makepyfile(TIMEOUTS)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Timeout: the setup of the test took longer than the cooperative timeout of 0.3s*",
            "*Timeout: the test took longer than the cooperative timeout of 0.3s*",
        ]
    )


def test_marker_timeout_overrides_option(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

@pytest.mark.plait_cooperative(timeout=0.2)
async def test_slow():
    await asyncio.sleep(30)

@pytest.mark.plait_cooperative
async def test_allowed():
    await asyncio.sleep(0.4)
"""
    )
    result = pytester.runpytest("--plait-cooperative-timeout=5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*cooperative timeout of 0.2s*"])


def test_bad_option_value_is_a_usage_error(pytester, ini):
    ini(plait_cooperative_max_tasks="many")
    pytester.makepyfile(SLEEPERS.format(n=1, seconds=0))
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*plait_cooperative_max_tasks must be a number*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_idle_loop_does_not_burn_cpu(pytester, ini):
    """A test that sleeps 1.5 s costs far less than 1.5 s of CPU (the peer busy-waits)."""
    pytester.makepyfile(
        """
import asyncio
import os
import pytest

@pytest.mark.plait_cooperative
async def test_sleep():
    before = os.times()
    await asyncio.sleep(1.5)
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    print("CPU", cpu)
    assert cpu < 0.5, cpu
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_cancels_running_tests_and_still_tears_down(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import os
import signal
import pytest

pytestmark = pytest.mark.plait_cooperative
HERE = os.path.dirname(__file__)

@pytest.fixture(scope="module")
async def resource():
    yield
    open(os.path.join(HERE, "module-teardown"), "w").close()

@pytest.fixture
async def per_test(request):
    yield
    open(os.path.join(HERE, "teardown-" + request.node.name), "w").close()

@pytest.mark.parametrize("i", range(3))
async def test_waits(resource, per_test, i):
    await asyncio.sleep(30)

async def test_interrupts(resource):
    await asyncio.sleep(0.2)
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(30)
"""
    )
    began = time.perf_counter()
    result = pytester.runpytest_subprocess()
    assert time.perf_counter() - began < 20
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    for i in range(3):
        assert (pytester.path / f"teardown-test_waits[{i}]").exists()
    assert (pytester.path / "module-teardown").exists()


def test_pytest_exit_in_a_test_stops_the_run_after_teardown(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import os
import pytest

pytestmark = pytest.mark.plait_cooperative
HERE = os.path.dirname(__file__)

@pytest.fixture
async def marker(request):
    yield
    open(os.path.join(HERE, "teardown-" + request.node.name), "w").close()

async def test_exits(marker):
    await asyncio.sleep(0.05)
    pytest.exit("enough")

@pytest.mark.parametrize("i", range(2))
async def test_waits(marker, i):
    await asyncio.sleep(30)
"""
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*Exit: enough*"])
    assert {p.name for p in pytester.path.glob("teardown-*")} == {
        "teardown-test_exits",
        "teardown-test_waits[0]",
        "teardown-test_waits[1]",
    }


def test_setup_plan_runs_nothing(pytester, ini):
    pytester.makepyfile(
        """
import pytest

@pytest.fixture
async def expensive():
    raise RuntimeError("must not run")

@pytest.mark.plait_cooperative
async def test_planned(expensive):
    raise RuntimeError("must not run")
"""
    )
    result = pytester.runpytest("--setup-plan")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*SETUP    F expensive*", "*test_planned*"])


DEADLOCK = """
import asyncio
import pytest
from plait.cooperative import Lock

a, b = Lock(), Lock()

async def take(first, second):
    async with first:
        await asyncio.sleep(0.05)
        async with second:
            pass

@pytest.mark.plait_cooperative(timeout=0.5)
async def test_a_then_b():
    await take(a, b)

@pytest.mark.plait_cooperative(timeout=60)
async def test_b_then_a():
    await take(b, a)

@pytest.mark.plait_cooperative
async def test_long():
    await asyncio.sleep(2)
"""


def test_a_hung_test_says_where_it_waits_and_is_reported_before_the_run_ends(pytester, ini):
    pytester.makepyfile(test_deadlock=DEADLOCK)
    result = pytester.runpytest("-v")
    # the first to time out releases its lock in teardown: the other then goes on
    result.assert_outcomes(passed=2, failed=1)
    # the hung test is reported while the long one still runs
    result.stdout.fnmatch_lines(["*::test_a_then_b FAILED*", "*::test_long PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "*Timeout: the test took longer than the cooperative timeout of 0.5s*",
            "It was suspended at (most recent call last):",
            '*test_deadlock.py", line *, in test_a_then_b',
            "*await take(a, b)",
            '*test_deadlock.py", line *, in take',
            "*async with second:",
            "*in acquire*",
        ]
    )
    assert "_engine.py" not in result.stdout.str()  # plait's own frames are left out


def test_a_deadlock_fails_fast_without_waiting_for_the_timeout(pytester, ini):
    # the default timeout is ten minutes: a stall is found once nothing else can happen
    pytester.makepyfile(
        test_deadlock=DEADLOCK.replace("(timeout=0.5)", "").replace("(timeout=60)", "")
    )
    # (pytest-timeout at 60 s: a miss costs a minute, not ten)
    result = pytester.runpytest("-v", "-p", "timeout", "--timeout=60")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*Stalled: every running cooperative test was waiting and nothing could wake any of them*",
            "It was suspended at (most recent call last):",
            "*await take(*",
            "*async with second:",
        ]
    )
