"""pytest-xdist workers: cooperative tests on a loop in a background thread.

A worker's main thread runs xdist's own loop, which hands over one item at a time
through ``pytest_runtest_protocol``. Cooperative items are submitted to a loop running
in a thread, so they overlap; before a non-cooperative item the worker waits for them
(:meth:`ThreadedRun.drain`), so pytest's own SetupState never runs beside the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from plait.cooperative._engine import CooperativeRun
from plait.cooperative._fixtures import SetupStateShim
from plait.cooperative._settings import Settings

_report_index = threading.local()


def _xdist_interactor(config: pytest.Config) -> Any:
    """xdist's WorkerInteractor, its ``item_index`` made readable per thread.

    Its ``pytest_runtest_logreport`` sends ``self.item_index`` (the item its own loop is
    at) with each report; reports logged from the loop thread must carry theirs.
    """
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and "item_index" in vars(plugin):
            base = type(plugin)

            def get(self: Any) -> Any:
                override = getattr(_report_index, "value", None)
                return self.__dict__["_plait_item_index"] if override is None else override

            def set_(self: Any, value: Any) -> None:
                self.__dict__["_plait_item_index"] = value

            patched = type(base.__name__, (base,), {"item_index": property(get, set_)})
            plugin.__dict__["_plait_item_index"] = plugin.__dict__.pop("item_index")
            plugin.__class__ = patched
            return plugin
    return None


class ThreadedRun:
    """pytest-xdist workers: the loop runs in a thread and takes items as they come.

    The worker's main thread keeps running xdist's loop; it hands cooperative items
    over with :meth:`submit` and, before a non-cooperative item, waits with
    :meth:`drain` so that pytest's own SetupState never runs beside the loop.
    """

    def __init__(self, session: pytest.Session, settings: Settings) -> None:
        self.run = CooperativeRun(session, settings)
        self.run.report_context = self._as_current_item
        self.session = session
        self._indexes = {id(item): i for i, item in enumerate(session.items)}
        self._interactor = _xdist_interactor(session.config)
        self._real_setupstate = session._setupstate
        self._shim = SetupStateShim(self.run.fixtures)
        self._loop = asyncio.new_event_loop()
        # Tests submitted and not finished; the main thread waits on it in drain().
        self._running = 0
        self._condition = threading.Condition()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(self.run.installed(setupstate=False))
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="plait-cooperative", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self.run._start_loop()

    @contextlib.contextmanager
    def _as_current_item(self, item: pytest.Item) -> Iterator[None]:
        """xdist's worker tags each report with the index of "its" current item."""
        if self._interactor is None:
            yield
            return
        _report_index.value = self._indexes[id(item)]
        try:
            yield
        finally:
            _report_index.value = None

    def submit(self, item: pytest.Item) -> None:
        if self.session._setupstate is not self._shim:
            # What pytest set up for the previous, non-cooperative item stays until
            # the next one tears down to its own chain (or the session ends).
            self._real_setupstate = self.session._setupstate
            self.session._setupstate = self._shim  # type: ignore[assignment]
        with self._condition:
            self._running += 1
        future = asyncio.run_coroutine_threadsafe(self._plan_and_run(item), self._loop)
        future.add_done_callback(self._done)

    async def _plan_and_run(self, item: pytest.Item) -> None:
        # Planning touches the fixture counts, which only the loop thread may change.
        self.run.fixtures.plan(item)
        await self.run.run_item(item)

    def _done(self, future: Any) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify_all()

    def drain(self, nextitem: pytest.Item | None = None) -> None:
        """Wait until every submitted test has finished; give pytest its SetupState back."""
        with self._condition:
            while self._running:
                self._condition.wait()
        if self.session._setupstate is self._shim:
            self.session._setupstate = self._real_setupstate
            if nextitem is not None:
                self._real_setupstate.teardown_exact(nextitem)

    def close(self) -> None:
        try:
            self.drain()
            asyncio.run_coroutine_threadsafe(self.run.close(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._stack.close()
        if self.run.interrupt is not None:
            raise self.run.interrupt
