"""Retries of a failed cooperative test: pytest-rerunfailures and pytest-retry.

Both plugins rerun a test from inside pytest's synchronous protocol (rerunfailures in
``pytest_runtest_protocol``, pytest-retry inside its ``pytest_runtest_makereport``),
which cannot await a cooperative test. plait reruns the test itself, on the loop, and
keeps each plugin's visible behaviour and bookkeeping: which failures count, how many
attempts, the delay, the reports logged and their outcomes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _pytest.runner import CallInfo

Results = list[tuple[CallInfo[None], pytest.TestReport]]


class Reruns:
    """A test without retries: one attempt, every report logged."""

    delay = 0.0
    counts_attempts = False

    def again(self, item: Any, results: Results, attempt: int) -> bool:
        """After setup and call: whether ``attempt`` is followed by another."""
        return False

    def starts(self, attempt: int) -> bool:
        """Whether ``attempt`` is announced with ``pytest_runtest_logstart``."""
        return True

    def record(self, item: Any, report: pytest.TestReport) -> None:
        """Bookkeeping of the plugin for each report made."""

    def logged(self, item: Any, results: Results, attempt: int, again: bool) -> tuple[bool, Results, bool]:
        """(log start?, the reports to log, log finish?) for this attempt."""
        return True, results, True


class RerunFailures(Reruns):
    """pytest-rerunfailures: ``--reruns``, ``@pytest.mark.flaky(reruns=...)``."""

    counts_attempts = True

    def __init__(self, reruns: int, delay: float) -> None:
        self.reruns = reruns
        self.delay = delay

    def again(self, item: Any, results: Results, attempt: int) -> bool:
        return (
            attempt <= self.reruns
            and any(rep.failed for _, rep in results)
            and not any(hasattr(rep, "wasxfail") for _, rep in results)
            and _rerun_matches(item, results)
        )

    def logged(self, item: Any, results: Results, attempt: int, again: bool) -> tuple[bool, Results, bool]:
        for _, report in results:
            report.rerun = attempt - 1  # type: ignore[attr-defined]
            if again and report.failed:
                report.outcome = "rerun"  # type: ignore[assignment]
        return True, results, True


class Retry(Reruns):
    """pytest-retry: ``@pytest.mark.flaky(retries=..., delay=..., only_on=..., exclude=...)``.

    As in pytest-retry, only a failure of the test function (not of its setup or
    teardown) is retried; the first failure is logged with the "retried" outcome, the
    last attempt's result is the test's, and the attempts are listed in the session's
    "the following tests were retried" section.
    """

    def __init__(self, module: Any, defaults: Any, mark: Any) -> None:
        self._module = module
        self._defaults = defaults
        self._mark = mark
        kwargs = mark.kwargs
        self.retries = int(kwargs.get("retries", _default(defaults, "RETRIES", 1)))
        self.delay = float(kwargs.get("delay", _default(defaults, "RETRY_DELAY", 0)) or 0)
        self.cumulative = bool(kwargs.get("cumulative_timing", _default(defaults, "CUMULATIVE_TIMING", False)))
        self.outcome = str(_default(defaults, "RETRY_OUTCOME", "retried"))
        self.call_durations: list[float] = []

    def _filter(self) -> Any:
        module, kwargs = self._module, self._mark.kwargs
        mine = module.ExceptionFilter(kwargs.get("only_on", []), kwargs.get("exclude", []))
        if mine:
            return mine
        return module.ExceptionFilter(
            _default(self._defaults, "FILTERED_EXCEPTIONS", []),
            _default(self._defaults, "EXCLUDED_EXCEPTIONS", []),
        )

    def again(self, item: Any, results: Results, attempt: int) -> bool:
        if self._mark.kwargs.get("condition") is False:
            return False
        calls = [(c, r) for c, r in results if r.when == "call"]
        if not calls:
            return False
        call, report = calls[-1]
        if call.excinfo is None or call.excinfo.typename == "Skipped" or report.skipped:
            return False
        if not self._filter()(call.excinfo.type):
            return False
        return attempt <= max(1, self.retries)

    def starts(self, attempt: int) -> bool:
        return attempt == 1

    def record(self, item: Any, report: pytest.TestReport) -> None:
        """What pytest-retry's own makereport wrapper records for each report."""
        stats = self._module.retry_manager.node_stats.get(report.nodeid)
        if stats is not None:
            stats["outcomes"][report.when].append(report.outcome)
            stats["durations"][report.when].append(report.duration)
        item.stash[self._module.outcome_key] = report.outcome
        if report.when == "call":
            self.call_durations.append(report.duration)

    def logged(self, item: Any, results: Results, attempt: int, again: bool) -> tuple[bool, Results, bool]:
        manager = self._module.retry_manager
        call = next(((c, r) for c, r in results if r.when == "call"), None)
        if again:
            assert call is not None
            manager.log_attempt(attempt=attempt, name=item.name, exc=call[0].excinfo, result=self._module.RETRY)
            if attempt > 1:
                return False, [], False
            # the first failure is shown as "retried"; its teardown is not reported
            call[1].outcome = self.outcome  # type: ignore[assignment]
            return True, [(c, r) for c, r in results if r.when != "teardown"], False
        if attempt == 1:
            return True, results, True
        # the last attempt: its call report is the test's result
        shown: Results = []
        for c, r in results:
            if r.when == "setup" and r.passed:
                continue  # set up again for the retry: pytest-retry does not report it
            if r.when == "call" and self.cumulative:
                r.duration = sum(self.call_durations)
            shown.append((c, r))
        if call is not None:
            result = self._module.FAIL if call[1].failed else self._module.PASS
            manager.log_attempt(attempt=attempt, name=item.name, exc=call[0].excinfo, result=result)
        return False, shown, True


def _default(defaults: Any, name: str, fallback: Any) -> Any:
    try:
        return getattr(defaults, name)
    except Exception:
        return fallback


def retry_plugin(config: pytest.Config) -> Any:
    """pytest-retry's plugin module, if it is active in this session."""
    return config.pluginmanager.get_plugin("pytest-retry")


def reruns_for(item: Any) -> Reruns:
    """The retry policy of ``item``: pytest-retry's, rerunfailures' or none."""
    config = item.config
    module = retry_plugin(config)
    if module is not None:
        mark = item.get_closest_marker("flaky")
        if mark is not None and (
            "retries" in mark.kwargs or not config.pluginmanager.has_plugin("rerunfailures")
        ):
            defaults: Any = None
            try:
                from pytest_retry.configs import Defaults

                defaults = Defaults
            except ImportError:  # pragma: no cover - an incompatible version
                pass
            return Retry(module, defaults, mark)
    reruns, delay = _rerunfailures(item)
    if reruns is None:
        return Reruns()
    return RerunFailures(reruns, delay)


def _rerunfailures(item: Any) -> tuple[int | None, float]:
    """pytest-rerunfailures' settings for ``item``, or (None, 0) without the plugin."""
    if not item.config.pluginmanager.has_plugin("rerunfailures"):
        return None, 0.0
    try:
        import pytest_rerunfailures as rerunfailures  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        return None, 0.0
    try:
        reruns = rerunfailures.get_reruns_count(item)
        delay = rerunfailures.get_reruns_delay(item) if reruns else 0.0
    except Exception:  # pragma: no cover - an incompatible version
        return None, 0.0
    if not reruns:
        return None, 0.0
    return int(reruns), float(delay or 0.0)


def _rerun_matches(item: Any, results: Results) -> bool:
    """``--only-rerun`` / ``--rerun-except``, matched against "Type: message" of the error."""
    only = item.config.getoption("only_rerun", None) or []
    excepted = item.config.getoption("rerun_except", None) or []
    if not only and not excepted:
        return True
    errors = [
        f"{call.excinfo.type.__name__}: {call.excinfo.value}"
        for call, report in results
        if report.failed and call.excinfo is not None
    ]
    if only and not any(re.search(p, e) for p in only for e in errors):
        return False
    return not any(re.search(p, e) for p in excepted for e in errors)
