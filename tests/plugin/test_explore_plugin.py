"""The pytest face of @plait.explore, driven through pytester."""

from __future__ import annotations

import re

import pytest

INCREMENT = '''
import asyncio, random
import plait

db = {}

async def get_value(k):
    await asyncio.sleep(random.uniform(0, 0.01))
    return db[k]

async def set_value(k, v):
    await asyncio.sleep(random.uniform(0, 0.01))
    db[k] = v

async def increment(k):
    v = await get_value(k)
    await set_value(k, v + 1)

async def locked_increment(k, lock):
    async with lock:
        await increment(k)

@plait.explore()
async def test_two_increments():
    db["k"] = 0
    await asyncio.gather(increment("k"), increment("k"))
    assert db["k"] == 2

@plait.explore()
async def test_two_increments_locked():
    db["k"] = 0
    lock = asyncio.Lock()
    await asyncio.gather(locked_increment("k", lock), locked_increment("k", lock))
    assert db["k"] == 2
'''

TOKEN = re.compile(r"--plait-replay=(plait1:[A-Za-z0-9_-]+)")


def _token(result: pytest.RunResult) -> str:
    match = TOKEN.search(result.stdout.str())
    assert match, result.stdout.str()
    return match.group(1)


def test_bug_found_with_report_and_token(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "plait found an interleaving that fails test_two_increments" in out
    assert "Task-2 (increment)" in out and "suspends at test_inc.py:" in out
    assert "in get_value" in out and "in set_value" in out
    assert "assert 1 == 2" in out  # pytest's assertion rewriting still explains the failure
    assert '@plait.replay("plait1:' in out
    assert "pytest 'test_inc.py::test_two_increments' --plait-replay=plait1:" in out
    result.stdout.re_match_lines([
        r"plait: test_two_increments: \d+ executions?, .*FAILED",
        r"plait: test_two_increments_locked: \d+ executions, dpor, exhausted",
    ])
    assert len(_token(result)) < 60
    # the traceback is the user's assertion and plait's report, not plait's own frames
    for internal in ("runner.py:", "api.py:", "pytest_plugin.py:", "threads/__init__.py:"):
        assert internal not in out


def test_thread_failure_traceback_shows_only_the_users_code(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lost='''
        import threading, plait

        class Box:
            value = 0

        @plait.explore()
        def test_lost_update():
            box = Box()
            def bump():
                seen = box.value
                box.value = seen + 1
            threads = [threading.Thread(target=bump) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert box.value == 2
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert ">       assert box.value == 2" in out and "plait found an interleaving" in out
    for internal in ("runner.py:", "api.py:", "pytest_plugin.py:", "threads/__init__.py:"):
        assert internal not in out


def test_replay_flag_reproduces_the_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT)
    token = _token(pytester.runpytest("-p", "no:cacheprovider"))
    for _ in range(3):
        again = pytester.runpytest("-p", "no:cacheprovider", "test_inc.py::test_two_increments",
                                   f"--plait-replay={token}")
        again.assert_outcomes(failed=1)
        again.stdout.fnmatch_lines(["*plait replayed a token on test_two_increments*",
                                    "*1 execution, replay, replayed a token, FAILED*"])


def test_replay_decorator_reproduces_the_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT)
    token = _token(pytester.runpytest("-p", "no:cacheprovider"))
    pytester.makepyfile(test_replayed=INCREMENT.replace(
        "@plait.explore()\nasync def test_two_increments():",
        f'@plait.replay("{token}")\n@plait.explore()\nasync def test_two_increments():'))
    result = pytester.runpytest("-p", "no:cacheprovider", "test_replayed.py")
    result.assert_outcomes(passed=1, failed=1)
    assert "plait replayed a token on test_two_increments" in result.stdout.str()


def test_misconfigured_decorator_fails_loudly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import plait

        @plait.explore(strategy="exhaustive-please")
        async def test_x():
            pass
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*strategy='exhaustive-please' is not known; accepted: auto, dpor, dfs*"])
    assert "skipped" not in result.stdout.str()


def test_bad_command_line_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--plait-budget=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*plait option max_executions must be at least 1, got 0*"])


def test_damaged_token_names_the_problem(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT)
    result = pytester.runpytest("-p", "no:cacheprovider", "test_inc.py::test_two_increments",
                                "--plait-replay=plait1:@@@@")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot replay 'plait1:@@@@'*"])


def test_generator_test_is_refused_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import plait

        @plait.explore
        def test_gen():
            yield 1
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*needs an `async def` or a plain `def` test*"])


def test_ini_and_command_line_options(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nplait_strategy = random\nplait_budget = 7\n")
    pytester.makepyfile('''
        import asyncio, plait

        @plait.explore()
        async def test_quiet():
            await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*plait: test_quiet: 7 executions, random, not exhausted*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--plait-strategy=dfs")
    result.stdout.fnmatch_lines(["*plait: test_quiet: * executions, dfs, exhausted*"])


def test_saved_failure_is_rerun_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT)
    first = pytester.runpytest()
    first.assert_outcomes(passed=1, failed=1)
    second = pytester.runpytest()
    second.assert_outcomes(passed=1, failed=1)
    assert "re-ran this failure, saved from an earlier run" in second.stdout.str()
    assert _token(first) == _token(second)


def test_virtual_time_in_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import asyncio, time, plait

        @plait.explore()
        async def test_hour():
            start = time.monotonic()  # time.monotonic follows the virtual clock too
            await asyncio.gather(asyncio.sleep(3600), asyncio.sleep(1800))
            assert abs(time.monotonic() - start - 3600) < 1e-6
    ''')
    import time

    started = time.monotonic()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert time.monotonic() - started < 60  # an hour and a half of sleeps, virtually


def test_nondeterminism_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import asyncio, itertools, plait

        runs = itertools.count()

        @plait.explore(strategy="dfs")
        async def test_changes_shape():
            n = 2 + next(runs) % 2   # a different number of tasks each execution
            await asyncio.gather(*(asyncio.sleep(0) for _ in range(n)))
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Nondeterminism*decision*"])


OTHER = '''
import asyncio, plait

@plait.explore()
async def test_other():
    await asyncio.sleep(0)
'''


def test_replay_flag_applies_to_its_own_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT, test_other=OTHER)
    token = _token(pytester.runpytest("-p", "no:cacheprovider", "test_inc.py"))
    # every test selected: the token replays its own test, the others are explored as usual
    result = pytester.runpytest("-p", "no:cacheprovider", f"--plait-replay={token}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*plait: test_two_increments: 1 execution, replay, replayed a token*",
                                 "*plait: test_two_increments_locked: * exhausted*",
                                 "*plait: test_other: * exhausted*"])
    assert "recorded for none of the tests" not in result.stdout.str()


def test_replay_of_another_tests_token_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inc=INCREMENT, test_other=OTHER)
    token = _token(pytester.runpytest("-p", "no:cacheprovider", "test_inc.py"))
    result = pytester.runpytest("-p", "no:cacheprovider", "test_other.py", f"--plait-replay={token}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*the --plait-replay token was recorded for none of the tests*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # the decorator, given another test's token, fails that test naming the problem
    pytester.makepyfile(test_other=OTHER.replace("@plait.explore()", f'@plait.replay("{token}")'))
    result = pytester.runpytest("-p", "no:cacheprovider", "test_other.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*this token was recorded for another test, not test_other*"])


def test_beside_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_inc=INCREMENT + '''

async def test_plain_pytest_asyncio():
    await asyncio.sleep(0)
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)


def test_fixtures_reach_the_explored_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import asyncio, pytest, plait

        @pytest.fixture
        def amount():
            return 3

        @plait.explore()
        async def test_uses_fixture(amount, tmp_path):
            await asyncio.sleep(0)
            assert amount == 3 and tmp_path.exists()
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
