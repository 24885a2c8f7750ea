"""Per-test output, logs and warnings while many tests share one thread.

``sys.stdout``, ``sys.stderr``, the root logger and the warnings recorder are
process-wide, so during a cooperative run they are replaced by routers that look up
the running test in a context variable (each asyncio task has its own copy) and hand
the text, record or warning to that test. ``capsys``/``capfd`` are swapped for a
version built on the same idea.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
import warnings
from collections.abc import Generator, Iterator
from typing import Any

from _pytest.capture import CaptureResult
from _pytest.logging import LogCaptureHandler, caplog_handler_key, caplog_records_key

CURRENT: contextvars.ContextVar[TestOutput | None] = contextvars.ContextVar(
    "plait_cooperative_test", default=None
)

# True while a synchronous pytest hook runs: pytest's own capture and logging plugins
# are active then, and the routers stay out of their way.
_paused = False
# The installed routers: pytest's capture plugin puts back the streams it saw at start
# after each hook, so they are put in place again afterwards.
_routers: list[tuple[str, Any]] = []


class _Paused:
    """``with paused():`` around a synchronous pytest hook (a class: it is entered ~20
    times per test, and a generator-based context manager costs several times more)."""

    __slots__ = ("_before",)

    def __enter__(self) -> None:
        global _paused
        self._before, _paused = _paused, True

    def __exit__(self, *exc: object) -> None:
        global _paused
        _paused = self._before
        for name, router in _routers:
            if getattr(sys, name) is not router:
                router._original = getattr(sys, name)
                setattr(sys, name, router)


def paused() -> _Paused:
    return _Paused()


class TestOutput:
    """What one test printed and logged, phase by phase."""

    __test__ = False

    def __init__(self, item: Any, capture: bool, log_level: int | None, formatter: Any) -> None:
        self.item = item
        self.capture = capture
        self.log_level = log_level if log_level is not None else 0
        self.formatter = formatter
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.fixture: CooperativeCapture | None = None
        # Creating logging handlers is costly (logging keeps a global list of them), so
        # a test gets a caplog handler only if it uses caplog; the records for the
        # report section are kept in a plain list.
        self.uses_caplog = "caplog" in getattr(item, "fixturenames", ())
        self.caplog_handler: LogCaptureHandler | None = None
        self.report_records: list[logging.LogRecord] = []
        self.warnings: list[warnings.WarningMessage] = []

    def write(self, which: str, text: str, original: Any) -> int:
        fixture = self.fixture
        if fixture is not None and not fixture.disabled_now:
            fixture.buffer(which).write(text)
            if fixture.tee:
                original.write(text)
            return len(text)
        if not self.capture:
            return original.write(text)
        return (self.out if which == "out" else self.err).write(text)

    def start_phase(self, when: str) -> None:
        """Fresh log records for ``when``."""
        self.report_records = []
        if self.uses_caplog:
            self.caplog_handler = LogCaptureHandler()
            if self.log_level:
                self.caplog_handler.setLevel(self.log_level)
        self.publish(when)

    def publish(self, when: str) -> None:
        """Put this phase's handler where ``caplog`` looks (pytest's hooks replace it)."""
        if self.caplog_handler is None:
            return
        stash = self.item.stash
        records = stash.get(caplog_records_key, None)
        if records is None:
            records = stash[caplog_records_key] = {}
        records[when] = self.caplog_handler.records
        stash[caplog_handler_key] = self.caplog_handler

    def handle(self, record: logging.LogRecord) -> None:
        handler = self.caplog_handler
        if handler is not None and record.levelno >= handler.level:
            handler.handle(record)
        if record.levelno >= self.log_level:
            self.report_records.append(record)

    def end_phase(self, when: str) -> None:
        """Attach what the phase printed and logged to the item, as pytest does."""
        item = self.item
        out, err = self.out.getvalue(), self.err.getvalue()
        if out or err:
            self.out, self.err = io.StringIO(), io.StringIO()
            item.add_report_section(when, "stdout", out)
            item.add_report_section(when, "stderr", err)
        if self.report_records:
            formatter = self.formatter or logging.Formatter()
            log = "\n".join(formatter.format(r) for r in self.report_records).strip()
            item.add_report_section(when, "log", log)


class _StreamRouter(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr and forwards to the running test."""

    def __init__(self, original: Any, which: str) -> None:
        self._original = original
        self._which = which

    def write(self, text: str) -> int:
        test = CURRENT.get()
        if test is None or _paused:
            return self._original.write(text)
        return test.write(self._which, text, self._original)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        test = CURRENT.get()
        if test is not None and test.capture:
            return False
        return bool(self._original.isatty())

    def fileno(self) -> int:
        return int(self._original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8") or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._original, "errors", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _LogRouter(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if _paused:
            return
        test = CURRENT.get()
        if test is not None:
            test.handle(record)


@contextlib.contextmanager
def routing(log_level: int | None) -> Iterator[None]:
    """Install the stdout/stderr/log routers for the duration of a cooperative run."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = _StreamRouter(out, "out")
    sys.stderr = _StreamRouter(err, "err")
    saved_routers = list(_routers)
    _routers[:] = [("stdout", sys.stdout), ("stderr", sys.stderr)]
    root = logging.getLogger()
    handler = _LogRouter()
    root.addHandler(handler)
    root_level = root.level
    if log_level is not None:
        root.setLevel(min(root_level, log_level))
    try:
        yield
    finally:
        _routers[:] = saved_routers
        root.removeHandler(handler)
        root.setLevel(root_level)
        if isinstance(sys.stdout, _StreamRouter):
            sys.stdout = sys.stdout._original
        if isinstance(sys.stderr, _StreamRouter):
            sys.stderr = sys.stderr._original


@contextlib.contextmanager
def warnings_per_test() -> Iterator[None]:
    """Inside pytest's ``catch_warnings``: file each warning under the test that raised it.

    ``warnings.catch_warnings(record=True)`` records through ``_showwarnmsg_impl``; it is
    wrapped so that a warning raised by a test is kept with that test (and reported with
    its node id) instead of going to the run's anonymous list.
    """
    recorder = getattr(warnings, "_showwarnmsg_impl", None)
    if recorder is None or getattr(recorder, "__name__", "") != "append":
        yield
        return

    def record(message: warnings.WarningMessage) -> None:
        test = CURRENT.get()
        if test is None:
            recorder(message)
        else:
            test.warnings.append(message)

    warnings._showwarnmsg_impl = record  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if warnings._showwarnmsg_impl is record:  # type: ignore[attr-defined]
            warnings._showwarnmsg_impl = recorder  # type: ignore[attr-defined]


def forget_shown_warnings() -> None:
    """Let each test record its own first occurrence of a warning, as pytest does.

    pytest enters ``catch_warnings`` per test, which resets the "already shown"
    registries; one ``catch_warnings`` spans the whole cooperative run, so they are
    reset when each test starts.
    """
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


class CooperativeCapture:
    """``capsys``/``capfd`` (and the binary and tee variants) for a cooperative test.

    Captures what this test writes through ``sys.stdout``/``sys.stderr``; output of
    the other tests running at the same time is not mixed in. Writes straight to file
    descriptors 1 and 2 (subprocesses, C code) cannot be told apart per test and are
    not captured.
    """

    def __init__(self, test: TestOutput, binary: bool, tee: bool = False) -> None:
        self._test = test
        self._binary = binary
        self.tee = tee
        self._out = io.StringIO()
        self._err = io.StringIO()
        self.disabled_now = False

    def buffer(self, which: str) -> io.StringIO:
        return self._out if which == "out" else self._err

    def readouterr(self) -> Any:
        out, err = self._out.getvalue(), self._err.getvalue()
        self._out, self._err = io.StringIO(), io.StringIO()
        if self._binary:
            return CaptureResult(out.encode(), err.encode())
        return CaptureResult(out, err)

    @contextlib.contextmanager
    def disabled(self) -> Generator[None]:
        before, self.disabled_now = self.disabled_now, True
        capture, self._test.capture = self._test.capture, False
        try:
            yield
        finally:
            self.disabled_now = before
            self._test.capture = capture

    def _close(self) -> None:
        # As pytest does: output nobody read goes to the test's report.
        self._test.fixture = None
        self._test.out.write(self._out.getvalue())
        self._test.err.write(self._err.getvalue())


def capture_fixture(name: str, test: TestOutput) -> Generator[CooperativeCapture]:
    if test.fixture is not None:
        raise RuntimeError(
            f"cannot use {name} together with another capture fixture in the same test"
        )
    fixture = CooperativeCapture(test, binary=name.endswith("binary"), tee=name == "capteesys")
    test.fixture = fixture
    try:
        yield fixture
    finally:
        fixture._close()


CAPTURE_FIXTURES = frozenset({"capsys", "capfd", "capsysbinary", "capfdbinary", "capteesys"})
