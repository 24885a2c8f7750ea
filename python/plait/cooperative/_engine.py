"""The cooperative run: each test is a task on one event loop, reported like pytest does.

A test goes through pytest's phases (setup, call, teardown). Each phase first calls
pytest's synchronous runtest hook, so skip/xfail marks, capture, logging and the other
plugins see the phase, then does the part that may wait (fixtures, the test coroutine)
on the loop. The reports are built by ``pytest_runtest_makereport`` from a ``CallInfo``
whose start, stop and duration are the phase's real ones, and are logged together when
the test ends, so the terminal and JUnit XML show one test at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _pytest.outcomes import Exit
from _pytest.runner import CallInfo, check_interactive_exception
from _pytest.warnings import catch_warnings_for_item

from plait import unawaited
from plait.cooperative import _capture
from plait.cooperative._fixtures import Fixtures, SetupStateShim, TestRun
from plait.cooperative.plugin import MARKER, PEER_MARKER, Settings
from plait.errors import NeverAwaited

_INTERRUPTS = (KeyboardInterrupt, SystemExit, Exit)


def run_cooperative(session: pytest.Session, items: list[pytest.Item], settings: Settings) -> None:
    """Run ``items`` concurrently on a fresh event loop; return when all are done."""
    run = CooperativeRun(session, settings)
    for item in items:
        run.fixtures.plan(item)
    with run.installed():
        _run_on_new_loop(run.main(items))
    if run.interrupt is not None:
        raise run.interrupt


def _run_on_new_loop(main: Any) -> None:
    """``asyncio.run(main)``, without touching the thread's current event loop.

    (pytest-asyncio may have set one; asyncio.run would unset it.) The first Ctrl-C
    cancels ``main``, which cancels the tests and lets them tear down; a second one
    interrupts at once.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)

    handle_sigint = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if handle_sigint:
        signal.signal(signal.SIGINT, on_sigint)
    graceful = True
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    except KeyboardInterrupt:
        graceful = False  # the second Ctrl-C: do not wait for anything
        raise
    finally:
        if handle_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            if graceful:
                leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for leftover in leftovers:
                    leftover.cancel()
                if leftovers:
                    loop.run_until_complete(asyncio.wait(leftovers))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


class CooperativeRun:
    """The cooperative tests of one session (or of one xdist worker) and their fixtures."""

    def __init__(self, session: pytest.Session, settings: Settings) -> None:
        self.session = session
        self.config = session.config
        self.settings = settings
        self.fixtures = Fixtures(session)
        self.interrupt: BaseException | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.live: set[asyncio.Task[Any]] = set()  # tests started and not finished
        # Context in which an item's reports are logged (xdist needs one).
        self.report_context: Any = lambda item: contextlib.nullcontext()
        self.last_item: pytest.Item | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._hypothesis_lock: asyncio.Lock | None = None
        logging_plugin = self.config.pluginmanager.get_plugin("logging-plugin")
        self._log_level = getattr(logging_plugin, "log_level", None)
        self._formatter = getattr(logging_plugin, "formatter", None)
        self._capture = self.config.getoption("capture", "fd") != "no"
        self._setuponly = bool(self.config.getoption("setuponly", False))

    @contextlib.contextmanager
    def installed(self, setupstate: bool = True) -> Iterator[None]:
        """Process-wide state for the duration of the run: routers, SetupState, warnings."""
        session = self.session
        saved = session._setupstate
        if setupstate:
            session._setupstate = SetupStateShim(self.fixtures)  # type: ignore[assignment]
        try:
            with catch_warnings_for_item(
                self.config, ihook=self.config.hook, when="runtest", item=None
            ):
                with _capture.routing(self._log_level), _capture.warnings_per_test(), \
                        unawaited.per_context():
                    yield
        finally:
            if setupstate:
                session._setupstate = saved

    # -- scheduling -----------------------------------------------------------------

    def stopping(self) -> bool:
        return bool(
            self.interrupt is not None or self.session.shouldfail or self.session.shouldstop
        )

    def _start_loop(self) -> None:
        # in the loop's thread (origin tracking is per thread): never-awaited coroutines
        # are reported with the line that made them
        sys.set_coroutine_origin_tracking_depth(1)
        if self.settings.max_tasks > 0:
            self._semaphore = asyncio.Semaphore(self.settings.max_tasks)
        self._hypothesis_lock = asyncio.Lock()

    async def main(self, items: list[pytest.Item]) -> None:
        self._start_loop()
        self.tasks = [asyncio.create_task(self.run_item(item)) for item in items]
        try:
            await asyncio.wait(self.tasks)
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.Runner cancelled us; the tests get cancelled too, and
            # still tear down before the session ends.
            for task in self.tasks:
                task.cancel()
            await asyncio.wait(self.tasks)
            await self.close()
            raise
        await self.close()
        for task in self.tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]  # a bug of ours: say so

    async def close(self) -> None:
        sys.set_coroutine_origin_tracking_depth(0)
        try:
            await self.fixtures.close()
        except BaseException as exc:
            if not isinstance(exc, Exception | pytest.fail.Exception | BaseExceptionGroup):
                raise
            if self.last_item is not None:
                self._report_late_teardown_error(self.last_item, exc)

    def _report_late_teardown_error(self, item: pytest.Item, exc: BaseException) -> None:
        try:
            raise exc
        except BaseException:
            excinfo = pytest.ExceptionInfo.from_current()
        now = time.time()
        call: CallInfo[None] = CallInfo(None, excinfo, now, now, 0.0, "teardown", _ispytest=True)
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        item.ihook.pytest_runtest_logreport(report=report)

    async def run_item(self, item: pytest.Item) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.live.add(task)
        try:
            if self._semaphore is None:
                await self._run_item(item)
            else:
                async with self._semaphore:
                    await self._run_item(item)
        except asyncio.CancelledError:
            self.fixtures.forget(item)
            raise
        except _INTERRUPTS as exc:
            self._interrupted(exc)
        finally:
            self.live.discard(task)

    def _interrupted(self, exc: BaseException) -> None:
        """A test raised KeyboardInterrupt, SystemExit or pytest.exit(): stop them all."""
        if self.interrupt is None:
            self.interrupt = exc
        current = asyncio.current_task()
        for task in list(self.live):
            if task is not current:
                task.cancel()

    async def _run_item(self, item: pytest.Item) -> None:
        if self.stopping():
            self.fixtures.forget(item)
            return
        reruns, delay = _reruns(item)
        attempt = 0
        while True:
            attempt += 1
            if reruns is not None:
                item.execution_count = attempt  # type: ignore[attr-defined]
            outcome = await self._attempt(item, attempt, reruns)
            self.last_item = item
            if outcome is None:
                return
            if delay:
                await asyncio.sleep(delay)

    # -- one attempt ----------------------------------------------------------------

    def _timeout_for(self, item: pytest.Item) -> float:
        for name in (MARKER, PEER_MARKER):
            marker = item.get_closest_marker(name)
            if marker is not None and "timeout" in marker.kwargs:
                return float(marker.kwargs["timeout"])
        return self.settings.timeout

    async def _attempt(self, item: Any, attempt: int, reruns: int | None) -> str | None:
        """Run the three phases; log the reports; return "rerun" if the test goes again."""
        output = _capture.TestOutput(item, self._capture, self._log_level, self._formatter)
        _capture.forget_shown_warnings()
        run = TestRun(item, output)
        item._report_sections = []
        # Plugins that look fixtures up through item._request (Hypothesis) get ours.
        item._request = run.top
        token = _capture.CURRENT.set(output)
        timeout = self._timeout_for(item)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        results: list[tuple[CallInfo[None], pytest.TestReport]] = []
        cancelled: BaseException | None = None
        try:
            # setup
            output.start_phase("setup")
            call, cancelled = await self._phase(
                "setup", item, self._sync_setup, self.fixtures.setup(run), deadline, timeout
            )
            results.append((call, self._report(item, call, output, "setup")))
            # call
            if cancelled is None and results[-1][1].passed and not self._setuponly:
                output.start_phase("call")
                call, cancelled = await self._phase(
                    "call", item, self._sync_call, self._call_test(item), deadline, timeout
                )
                results.append((call, self._report(item, call, output, "call")))
            # teardown
            failed_so_far = any(rep.failed for _, rep in results)
            again = (
                cancelled is None
                and reruns is not None
                and attempt <= reruns
                and failed_so_far
                and not any(hasattr(rep, "wasxfail") for _, rep in results)
                and _rerun_matches(item, results)
                and not self.stopping()
            )
            output.start_phase("teardown")
            teardown_deadline = loop.time() + timeout if timeout > 0 else None
            call, late_cancel = await self._phase(
                "teardown",
                item,
                None,
                self.fixtures.teardown(run, final=not again),
                teardown_deadline,
                timeout,
                sync_after=lambda: item.ihook.pytest_runtest_teardown(item=item, nextitem=None),
            )
            cancelled = cancelled or late_cancel
            results.append((call, self._report(item, call, output, "teardown")))
        finally:
            _capture.CURRENT.reset(token)
        if cancelled is not None:
            raise cancelled
        self._log(item, results, output, attempt if reruns is not None else None, again)
        item.funcargs = None  # as pytest does: let the fixture values go
        item._request = False
        return "rerun" if again else None

    def _sync_setup(self, item: Any) -> None:
        __tracebackhide__ = True
        item.ihook.pytest_runtest_setup(item=item)

    def _sync_call(self, item: Any) -> None:
        # The hook runs the plugins' wrappers (xfail(run=False), ...) around a no-op; the
        # test itself is awaited afterwards, on the loop.
        __tracebackhide__ = True
        item.runtest = _noop
        try:
            item.ihook.pytest_runtest_call(item=item)
        finally:
            del item.runtest

    async def _phase(
        self,
        when: str,
        item: Any,
        sync_before: Any,
        work: Any,
        deadline: float | None,
        timeout: float,
        sync_after: Any = None,
    ) -> tuple[CallInfo[None], BaseException | None]:
        """One phase: sync hook, then the awaited ``work``; a CallInfo of the whole."""
        __tracebackhide__ = True
        start = time.time()
        began = time.perf_counter()
        excinfo = None
        cancelled: BaseException | None = None
        try:
            if sync_before is not None:
                with _capture.paused():
                    sync_before(item)
        except _INTERRUPTS as exc:
            cancelled = exc
            work.close()
        except BaseException:
            excinfo = pytest.ExceptionInfo.from_current()
            work.close()
        else:
            if when != "teardown":
                item_output = _capture.CURRENT.get()
                if item_output is not None:
                    item_output.publish(when)
            try:
                async with asyncio.timeout_at(deadline):
                    await work
            except TimeoutError as exc:
                if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                    excinfo = _timeout_excinfo(item, when, timeout, exc)
                else:
                    excinfo = pytest.ExceptionInfo.from_current()
            except (asyncio.CancelledError, *_INTERRUPTS) as exc:
                cancelled = exc
            except BaseException:
                excinfo = pytest.ExceptionInfo.from_current()
        if sync_after is not None:
            try:
                with _capture.paused():
                    sync_after()
            except _INTERRUPTS as exc:
                cancelled = cancelled or exc
            except BaseException:
                if excinfo is None:
                    excinfo = pytest.ExceptionInfo.from_current()
        stop = time.time()
        duration = time.perf_counter() - began
        call: CallInfo[None] = CallInfo(
            None,
            excinfo,
            start,
            stop,
            duration,
            when,  # type: ignore[arg-type]
            _ispytest=True,
        )
        return call, cancelled

    async def _call_test(self, item: Any) -> None:
        __tracebackhide__ = True
        func = item.obj
        hypothesis = getattr(func, "hypothesis", None)
        funcargs = item.funcargs
        testargs = {arg: funcargs[arg] for arg in item._fixtureinfo.argnames}
        found: list[str] = []
        with unawaited.collect(found):
            await self._run_test(item, func, hypothesis, testargs)
        if found:  # the test passed, yet part of its code never ran
            raise NeverAwaited("; ".join(found))

    async def _run_test(self, item: Any, func: Any, hypothesis: Any, testargs: dict[str, Any]) -> None:
        __tracebackhide__ = True
        if getattr(func, "is_hypothesis_test", False) and hypothesis is not None:
            if inspect.iscoroutinefunction(hypothesis.inner_test):
                await self._call_async_hypothesis(item, testargs)
                return
        if inspect.iscoroutinefunction(func):
            await func(**testargs)
        else:
            item.runtest()

    async def _call_async_hypothesis(self, item: Any, testargs: dict[str, Any]) -> None:
        """Hypothesis drives examples synchronously: let it do so in a thread, each
        example's coroutine running on our loop. One such test at a time."""
        __tracebackhide__ = True
        loop = asyncio.get_running_loop()
        hypothesis = item.obj.hypothesis
        inner = hypothesis.inner_test

        async def example(args: Any, kwargs: Any) -> tuple[bool, Any]:
            __tracebackhide__ = True
            try:
                return True, await inner(*args, **kwargs)
            except BaseException as exc:  # handed back to Hypothesis' thread
                return False, exc

        @functools.wraps(inner)
        def run_example(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            future = asyncio.run_coroutine_threadsafe(example(args, kwargs), loop)
            ok, value = future.result()
            if ok:
                return value
            raise value.with_traceback(value.__traceback__)

        assert self._hypothesis_lock is not None
        async with self._hypothesis_lock:
            hypothesis.inner_test = run_example
            try:
                await asyncio.to_thread(item.obj, **testargs)
            finally:
                hypothesis.inner_test = inner

    def _report(
        self, item: Any, call: CallInfo[None], output: _capture.TestOutput, when: str
    ) -> pytest.TestReport:
        output.end_phase(when)
        with _capture.paused():
            report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
        return report

    def _log(
        self,
        item: Any,
        results: list[tuple[CallInfo[None], pytest.TestReport]],
        output: _capture.TestOutput,
        attempt: int | None,
        again: bool,
    ) -> None:
        ihook = item.ihook
        with _capture.paused(), self.report_context(item):
            ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            rerun_marked = False
            for call, report in results:
                if attempt is not None:
                    report.rerun = attempt - 1  # type: ignore[attr-defined]
                if again and report.failed:
                    report.outcome = "rerun"  # type: ignore[assignment]
                    rerun_marked = True
                ihook.pytest_runtest_logreport(report=report)
                if not rerun_marked and check_interactive_exception(call, report):
                    ihook.pytest_exception_interact(node=item, call=call, report=report)
            for warning_message in output.warnings:
                ihook.pytest_warning_recorded.call_historic(
                    kwargs=dict(
                        warning_message=warning_message,
                        nodeid=item.nodeid,
                        when="runtest",
                        location=None,
                    )
                )
            ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _noop() -> None:
    pass


def _timeout_excinfo(
    item: Any, when: str, timeout: float, exc: BaseException
) -> pytest.ExceptionInfo[BaseException]:
    what = "test" if when == "call" else f"{when} of the test"
    message = (
        f"Timeout: the {what} took longer than the cooperative timeout of {timeout:g}s "
        f"(--plait-cooperative-timeout / ini plait_cooperative_timeout, or "
        f"@pytest.mark.{MARKER}(timeout=...))"
    )
    try:
        raise pytest.fail.Exception(message, pytrace=False) from exc
    except pytest.fail.Exception:
        return pytest.ExceptionInfo.from_current()


def _reruns(item: Any) -> tuple[int | None, float]:
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


def _rerun_matches(item: Any, results: list[tuple[CallInfo[None], pytest.TestReport]]) -> bool:
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
