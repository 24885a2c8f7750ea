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
import gc
import inspect
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
from plait.cooperative import _capture, _reruns
from plait.cooperative._fixtures import Fixtures, SetupStateShim, TestRun
from plait.cooperative._hooks import ItemHooks, guarded
from plait.cooperative._settings import PYTEST_TIMEOUT_KEY, RUNNING_KEY, Settings, marker_kwarg
from plait.cooperative._stall import StallWatch
from plait.cooperative._timeout import Deadline, budget, timeout_excinfo
from plait.errors import NeverAwaited

_INTERRUPTS = (KeyboardInterrupt, SystemExit, Exit)


def run_cooperative(session: pytest.Session, items: list[pytest.Item], settings: Settings) -> None:
    """Run ``items`` concurrently on a fresh event loop; return when all are done."""
    run = CooperativeRun(session, settings)
    for item in items:
        run.fixtures.plan(item)
    # The collected session (every item, its markers and fixture info) lives until the end:
    # the cyclic collector need not walk it again and again while the tests allocate.
    gc.freeze()
    try:
        with run.installed(first=items[0] if items else None):
            _run_on_new_loop(run.main(items))
    finally:
        gc.unfreeze()
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
        self.hooks = ItemHooks(self.config)
        # The deadline of each test task in a phase; the stall watch ends them all.
        self.deadlines: dict[asyncio.Task[Any], Deadline] = {}

    @contextlib.contextmanager
    def installed(self, setupstate: bool = True, first: Any = None) -> Iterator[None]:
        """Process-wide state for the duration of the run: routers, SetupState, warnings,
        and assertion rewriting's comparison hooks (set up as for ``first``)."""
        session = self.session
        saved = session._setupstate
        if setupstate:
            session._setupstate = SetupStateShim(self.fixtures)  # type: ignore[assignment]
        try:
            with catch_warnings_for_item(
                self.config, ihook=self.config.hook, when="runtest", item=None
            ):
                with _capture.routing(self._log_level), _capture.warnings_per_test(), \
                        unawaited.per_context(), self._run_wide(first):
                    yield
        finally:
            if setupstate:
                session._setupstate = saved

    def _run_wide(self, first: Any) -> Any:
        return self.hooks.run_wide(first) if first is not None else contextlib.nullcontext()

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

    def _stalled(self) -> None:
        for deadline in list(self.deadlines.values()):
            deadline.stall()

    async def main(self, items: list[pytest.Item]) -> None:
        self._start_loop()
        self.tasks = [asyncio.create_task(self.run_item(item)) for item in items]
        watch = StallWatch(asyncio.get_running_loop(), self.deadlines, self._stalled)
        try:
            await asyncio.wait(self.tasks)
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.Runner cancelled us; the tests get cancelled too, and
            # still tear down before the session ends.
            for task in self.tasks:
                task.cancel()
            await asyncio.wait(self.tasks)
            watch.close()
            await self.close()
            raise
        watch.close()
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
        """A teardown error found after the test's reports were logged: one more report."""
        excinfo = _excinfo(exc)
        now = time.time()
        call: CallInfo[None] = CallInfo(None, excinfo, now, now, 0.0, "teardown", _ispytest=True)
        with _capture.paused(), self.report_context(item):
            report = self._makereport(item, call)
            self._logreport(item, report)

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
        except Exception as exc:
            # A bug of plait's or a plugin's that escaped every guard: it is this test's
            # error, not the session's.
            self.fixtures.forget(item)
            self._report_late_teardown_error(item, exc)
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

    async def _run_item(self, item: Any) -> None:
        if self.stopping():
            self.fixtures.forget(item)
            return
        item.stash[RUNNING_KEY] = True
        with _capture.paused():
            entered, error = self.hooks.enter_protocol(item)
        try:
            try:
                reruns = _reruns.reruns_for(item)
            except Exception as bad:  # a malformed flaky marker, say
                reruns, error = _reruns.Reruns(), error or bad
            attempt = 0
            while True:
                attempt += 1
                if reruns.counts_attempts:
                    item.execution_count = attempt
                again = await self._attempt(item, attempt, reruns, error)
                error = None
                self.last_item = item
                if not again:
                    break
                if reruns.delay:
                    await asyncio.sleep(reruns.delay)
        finally:
            with _capture.paused():
                errors = self.hooks.exit_protocol(entered)
            for key in (RUNNING_KEY, PYTEST_TIMEOUT_KEY):
                if key in item.stash:
                    del item.stash[key]
        for exc in errors:
            self._report_late_teardown_error(item, exc)

    # -- one attempt ----------------------------------------------------------------

    async def _attempt(
        self, item: Any, attempt: int, reruns: _reruns.Reruns, error: BaseException | None
    ) -> bool:
        """Run the three phases and log their reports; whether the test goes again.

        ``error``: what a plugin raised before the test could start (entering its
        ``pytest_runtest_protocol`` wrapper): the test is an error in setup.
        """
        output = _capture.TestOutput(item, self._capture, self._log_level, self._formatter)
        _capture.forget_shown_warnings()
        run = TestRun(item, output)
        item._report_sections = []
        # Plugins that look fixtures up through item._request (Hypothesis) get ours.
        item._request = run.top
        token = _capture.CURRENT.set(output)
        loop = asyncio.get_running_loop()
        results: list[tuple[CallInfo[None], pytest.TestReport]] = []
        cancelled: BaseException | None = None
        again = False
        if reruns.starts(attempt):
            with _capture.paused():
                error = error or guarded(functools.partial(self.hooks.logstart_early, item))
        # A plugin's error before the start: pytest's runtest hooks are not called at all.
        started = error is None
        sync_setup = self._sync_setup if error is None else functools.partial(_raise, error)
        seconds, source = budget(item, self.settings)
        deadline = loop.time() + seconds if seconds > 0 else None
        try:
            # setup
            output.start_phase("setup")
            call, cancelled = await self._phase(
                "setup",
                item,
                sync_setup,
                self.fixtures.setup(
                    run, marker_kwarg(item, "concurrent_fixtures", self.settings.concurrent_fixtures)
                ),
                deadline,
                seconds,
                source,
            )
            results.append((call, self._report(item, call, output, "setup", reruns)))
            # call
            if cancelled is None and results[-1][1].passed and not self._setuponly:
                output.start_phase("call")
                call, cancelled = await self._phase(
                    "call", item, self._sync_call, self._call_test(item), deadline, seconds, source
                )
                results.append((call, self._report(item, call, output, "call", reruns)))
            # teardown
            if cancelled is None and not self.stopping():
                try:
                    again = reruns.again(item, results, attempt)
                except Exception:
                    again = False  # the plugin's own checks failed: no retry
            output.start_phase("teardown")
            teardown_deadline = loop.time() + seconds if seconds > 0 else None
            call, late_cancel = await self._phase(
                "teardown",
                item,
                None,
                self.fixtures.teardown(run, final=not again),
                teardown_deadline,
                seconds,
                source,
                sync_after=(
                    functools.partial(
                        self.hooks.phase(item, "pytest_runtest_teardown"), item=item, nextitem=None
                    )
                    if started
                    else None
                ),
            )
            cancelled = cancelled or late_cancel
            results.append((call, self._report(item, call, output, "teardown", reruns)))
        finally:
            _capture.CURRENT.reset(token)
        if cancelled is not None:
            raise cancelled
        self._log(item, results, output, reruns, attempt, again)
        item.funcargs = None  # as pytest does: let the fixture values go
        item._request = False
        return again

    def _sync_setup(self, item: Any) -> None:
        __tracebackhide__ = True
        self.hooks.phase(item, "pytest_runtest_setup")(item=item)

    def _sync_call(self, item: Any) -> None:
        # The hook runs the plugins' wrappers (xfail(run=False), ...) around a no-op; the
        # test itself is awaited afterwards, on the loop.
        __tracebackhide__ = True
        item.runtest = _noop
        try:
            self.hooks.phase(item, "pytest_runtest_call")(item=item)
        finally:
            del item.runtest

    async def _phase(
        self,
        when: str,
        item: Any,
        sync_before: Any,
        work: Any,
        deadline: float | None,
        seconds: float,
        source: str,
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
            if when == "call" and PYTEST_TIMEOUT_KEY in item.stash:
                # pytest-timeout's timeout_func_only budget starts with the test function
                own, own_source = budget(item, self.settings, func_only=True)
                if own > 0:
                    deadline = asyncio.get_running_loop().time() + own
                    seconds, source = own, own_source
            task = asyncio.current_task()
            assert task is not None
            timer = self.deadlines[task] = Deadline(task, deadline)
            raised: BaseException | None = None
            try:
                await work
            except BaseException as exc:
                raised = exc
                excinfo = pytest.ExceptionInfo.from_current()
            finally:
                del self.deadlines[task]
            if timer.close(raised):
                excinfo = timeout_excinfo(when, seconds, source, timer.stack, timer.stalled)
            elif isinstance(raised, (asyncio.CancelledError, *_INTERRUPTS)):
                excinfo, cancelled = None, raised
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

    def _makereport(self, item: Any, call: CallInfo[None]) -> pytest.TestReport:
        """The plugins' report of ``call``; if one of them raises, a report of that."""
        __tracebackhide__ = True
        try:
            return self.hooks.makereport(item, call)
        except _INTERRUPTS:
            raise
        except BaseException:
            plugin_error = pytest.ExceptionInfo.from_current()
        broken: CallInfo[None] = CallInfo(
            None, plugin_error, call.start, call.stop, call.duration, call.when, _ispytest=True
        )
        return pytest.TestReport.from_item_and_call(item, broken)

    def _report(
        self,
        item: Any,
        call: CallInfo[None],
        output: _capture.TestOutput,
        when: str,
        reruns: _reruns.Reruns,
    ) -> pytest.TestReport:
        output.end_phase(when)
        with _capture.paused():
            report = self._makereport(item, call)
            reruns.record(item, report)
        return report

    def _logreport(self, item: Any, report: pytest.TestReport) -> None:
        """Log ``report``; a plugin that raises gets the test failed with its traceback."""
        error = guarded(functools.partial(item.ihook.pytest_runtest_logreport, report=report))
        if error is None:
            return
        now = time.time()
        broken: CallInfo[None] = CallInfo(
            None, _excinfo(error), now, now, 0.0, report.when, _ispytest=True
        )
        substitute = pytest.TestReport.from_item_and_call(item, broken)
        if guarded(functools.partial(item.ihook.pytest_runtest_logreport, report=substitute)):
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(
                    f"plait: a plugin's pytest_runtest_logreport raised for {item.nodeid}:\n"
                    + str(substitute.longrepr)
                )
            self.session.testsfailed += 1

    def _log(
        self,
        item: Any,
        results: list[tuple[CallInfo[None], pytest.TestReport]],
        output: _capture.TestOutput,
        reruns: _reruns.Reruns,
        attempt: int,
        again: bool,
    ) -> None:
        ihook = item.ihook
        start, shown, finish = reruns.logged(item, results, attempt, again)
        with _capture.paused(), self.report_context(item):
            if start:
                guarded(functools.partial(self.hooks.logstart_terminal, item))
            for call, report in shown:
                self._logreport(item, report)
                if report.failed and check_interactive_exception(call, report):
                    guarded(
                        functools.partial(
                            ihook.pytest_exception_interact, node=item, call=call, report=report
                        )
                    )
            for warning_message in output.warnings:
                guarded(
                    functools.partial(
                        ihook.pytest_warning_recorded.call_historic,
                        kwargs=dict(
                            warning_message=warning_message,
                            nodeid=item.nodeid,
                            when="runtest",
                            location=None,
                        ),
                    )
                )
            if finish:
                guarded(
                    functools.partial(
                        ihook.pytest_runtest_logfinish, nodeid=item.nodeid, location=item.location
                    )
                )


def _noop() -> None:
    pass


def _raise(error: BaseException, item: Any) -> None:
    __tracebackhide__ = True
    raise error


def _excinfo(exc: BaseException) -> pytest.ExceptionInfo[BaseException]:
    return pytest.ExceptionInfo.from_exception(exc)
