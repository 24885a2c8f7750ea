"""Other plugins' per-test hooks, called for each cooperative test as pytest would.

pytest calls ``pytest_runtest_protocol`` once per test and the plugins' wrappers of it
bracket everything that happens to that test (pytest-timeout starts its timer there,
pytest-retry opens its bookkeeping). A cooperative run does not go through that hook, so
the wrappers are driven here by hand, around each test's run on the loop, in pluggy's
order. pytest's own wrappers that set process-wide state (warnings capture, assertion
rewriting's hooks, faulthandler's timer) are entered once for the whole run instead.

Every call into another plugin is guarded: what it raises is returned to the engine,
which reports it against the test that was running, so that one plugin's error cannot
end the session or leave a test's fixtures set up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pluggy import Result

from plait.cooperative import _reruns

# pytest_runtest_protocol wrappers that do not run per cooperative test: process-wide
# state, entered once per run (warnings, assertion) or left out (faulthandler's
# dump-traceback timer is one per process; unittest's wraps only unittest items), and
# the hook implementations of plait's own plugins.
ONCE_PER_RUN = ("assertion",)
LEFT_OUT = frozenset({"warnings", "faulthandler", "unittest", "assertion", "plait", "plait_cooperative"})
# logstart is sent to these only when the test's reports are logged, so the terminal
# shows one test at a time (xdist's worker forwards it to the controller's terminal).
TERMINALS = ("terminalreporter",)


def _is_terminal(plugin: Any, name: str | None) -> bool:
    return name in TERMINALS or type(plugin).__name__ == "WorkerInteractor"


class ItemHooks:
    """The hook callers of one cooperative run, built once and reused for every test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        pm = config.pluginmanager
        self._wrappers = [
            impl
            for impl in reversed(config.hook.pytest_runtest_protocol.get_hookimpls())
            if (impl.wrapper or impl.hookwrapper) and impl.plugin_name not in LEFT_OUT
        ]
        self._terminals = [plugin for name, plugin in pm.list_name_plugin() if _is_terminal(plugin, name)]
        self.retry = _reruns.retry_plugin(config)
        # pytest's capture and logging wrappers of the runtest hooks capture one test's
        # phase at a time, at the process level; plait routes output and log records to
        # each test itself, so they are left out of the synchronous phase hooks.
        self._phase_removed = tuple(
            p for p in (pm.get_plugin("capturemanager"), pm.get_plugin("logging-plugin")) if p
        )
        self._callers: dict[tuple[int, str], Any] = {}
        self._parents: list[Any] = []  # keeps the parents whose id() keys _callers alive

    def _caller(self, item: Any, name: str, remove: tuple[Any, ...]) -> Any:
        """``item.ihook.<name>`` without the plugins in ``remove``."""
        # The items of one parent share its hook proxy (the conftests of its directory);
        # looking ``item.ihook`` up costs more than the call, so it is kept per parent.
        key = (id(item.parent), name)
        caller = self._callers.get(key)
        if caller is None:
            ihook = item.ihook
            removed = set(getattr(ihook, "remove_mods", ())) | {p for p in remove if p is not None}
            if removed:
                caller = self.config.pluginmanager.subset_hook_caller(name, remove_plugins=removed)
            else:
                caller = getattr(ihook, name)
            self._callers[key] = caller
            self._parents.append(item.parent)
        return caller

    # -- pytest_runtest_protocol wrappers --------------------------------------------

    def enter_protocol(self, item: Any) -> tuple[list[tuple[Any, Any]], BaseException | None]:
        """Enter each wrapper of ``pytest_runtest_protocol`` for ``item``, outermost first.

        Returns the entered wrappers, and what one of them raised (the test is then
        reported as an error in setup, and the ones entered are left as pluggy would).
        """
        __tracebackhide__ = True
        entered: list[tuple[Any, Any]] = []
        args = {"item": item, "nextitem": None}
        for impl in self._wrappers:
            try:
                gen: Any = impl.function(*(args[name] for name in impl.argnames))
                next(gen)
            except StopIteration:
                continue
            except BaseException as exc:
                self.exit_protocol(entered, exc)
                return [], exc
            entered.append((impl, gen))
        return entered, None

    def exit_protocol(
        self, entered: list[tuple[Any, Any]], error: BaseException | None = None
    ) -> list[BaseException]:
        """Leave the wrappers entered by :meth:`enter_protocol`, innermost first."""
        __tracebackhide__ = True
        errors: list[BaseException] = []
        for impl, gen in reversed(entered):
            try:
                if impl.hookwrapper:
                    gen.send(Result(None if error else True, error))
                elif error is not None:
                    gen.throw(error)
                else:
                    gen.send(True)
            except StopIteration:
                continue
            except BaseException as exc:
                if exc is not error:
                    errors.append(exc)
                continue
            gen.close()
            errors.append(
                RuntimeError(f"the {impl.plugin_name} plugin's pytest_runtest_protocol wrapper yielded twice")
            )
        return errors

    @contextlib.contextmanager
    def run_wide(self, item: Any) -> Iterator[None]:
        """pytest's own per-test wrappers that set process-wide state, once for the run."""
        with contextlib.ExitStack() as stack:
            impls = [
                impl
                for impl in reversed(self.config.hook.pytest_runtest_protocol.get_hookimpls())
                if impl.plugin_name in ONCE_PER_RUN and impl.wrapper
            ]
            for impl in impls:
                gen: Any = impl.function(*({"item": item, "nextitem": None}[n] for n in impl.argnames))
                next(gen)
                stack.callback(_finish, gen)
            yield

    def phase(self, item: Any, name: str) -> Any:
        """The synchronous runtest hook ``name`` (``pytest_runtest_setup``, ...) for ``item``."""
        return self._caller(item, name, self._phase_removed)

    # -- reports --------------------------------------------------------------------

    def makereport(self, item: Any, call: Any) -> pytest.TestReport:
        """``pytest_runtest_makereport``; pytest-retry's wrapper is replaced by plait's retries."""
        __tracebackhide__ = True
        report: pytest.TestReport = self._caller(item, "pytest_runtest_makereport", (self.retry,))(
            item=item, call=call
        )
        return report

    def logstart_early(self, item: Any) -> None:
        """logstart for every plugin but the terminal ones, when the test starts."""
        __tracebackhide__ = True
        self._caller(item, "pytest_runtest_logstart", tuple(self._terminals))(
            nodeid=item.nodeid, location=item.location
        )

    def logstart_terminal(self, item: Any) -> None:
        for plugin in self._terminals:
            hook = getattr(plugin, "pytest_runtest_logstart", None)
            if hook is not None:
                hook(nodeid=item.nodeid, location=item.location)


def _finish(gen: Any) -> None:
    with contextlib.suppress(StopIteration):
        gen.send(True)


def guarded(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call``; return what it raised (an interrupt is re-raised)."""
    __tracebackhide__ = True
    try:
        call()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if type(exc).__name__ == "Exit" and isinstance(exc, pytest.exit.Exception):
            raise
        return exc
    return None
