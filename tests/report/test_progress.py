"""Live progress of long explorations: on a terminal only, never under -q or in an xdist
worker, never inside a test's captured output. The terminal is forced the way pytest's own
tests force it (the reporter's isatty), and PLAIT_PROGRESS_AFTER=0 makes any exploration
count as long."""

from __future__ import annotations

import re

import pytest

FORCE_TTY = '''
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.isatty = lambda: True
'''

TESTS = '''
import threading
import plait

class Counter:
    def __init__(self):
        self.value = 0

def run(n):
    c = Counter()
    def bump():
        v = c.value
        c.value = v + 1
    ts = [threading.Thread(target=bump) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return c

@plait.explore(strategy="dpor", stop_on_first=False, races="ignore")
def test_counter_exhausted():
    run(3)

@plait.explore(strategy="dpor")
def test_counter_fails():
    print("the test's own output")
    assert run(2).value == 2
'''

LIVE = re.compile(r"plait: test_counter_exhausted: dpor: \d+/1000 executions, \d+ distinct, \d+/s, "
                  r"\d+\.\ds of 60s")
FINAL = "plait: test_counter_exhausted: 36 executions, dpor, exhausted in "


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PLAIT_PROGRESS_AFTER", "0")
    monkeypatch.setenv("COLUMNS", "200")  # the line is cut at the terminal's width
    pytester.makeconftest(FORCE_TTY)
    pytester.makepyfile(test_progress_counter=TESTS)
    return pytester


def test_progress_on_a_terminal_and_not_in_captured_output(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert LIVE.search(out), out
    assert FINAL in out
    final_for_failure = re.search(r"plait: test_counter_fails: \d+ executions, dpor, stopped at the "
                                  r"first failure, FAILED \(execution \d+\) in ", out)
    assert final_for_failure, out
    captured = out.split("Captured stdout call", 1)[1].split("=====", 1)[0]
    assert "the test's own output" in captured
    assert "plait: test_counter" not in captured


def test_quiet_under_q(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, failed=1)
    assert not LIVE.search(result.stdout.str()) and FINAL not in result.stdout.str()


def test_quiet_when_not_a_terminal(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_PROGRESS_AFTER", "0")
    pytester.makepyfile(test_progress_counter=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert not LIVE.search(result.stdout.str()) and FINAL not in result.stdout.str()


def test_quiet_in_xdist_workers(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")
    result.assert_outcomes(passed=1, failed=1)
    assert not LIVE.search(result.stdout.str()) and FINAL not in result.stdout.str()
