"""pytest plugin: run the tests marked ``plait_cooperative`` as tasks on one event loop.

Registered through the ``pytest11`` entry point ``plait_cooperative``. This module
imports only pytest, the standard library and :mod:`._settings`; the engine (:mod:`._engine`) is imported
when a session actually has cooperative tests to run.

Which tests are cooperative: those carrying the ``plait_cooperative`` marker (or its
migration alias ``asyncio_cooperative``) on the function, its class or its module, and,
in ``auto`` mode, every ``async def`` test (and every test using an async fixture) that
pytest-asyncio does not own. The closest marker wins: a function marked
``@pytest.mark.asyncio`` inside a cooperative module stays with pytest-asyncio.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Generator
from typing import Any

import pytest

from plait.cooperative._settings import (
    DEFAULT_MAX_TASKS,
    DEFAULT_TIMEOUT,
    MARKER,
    MODES,
    PEER_MARKER,
    PYTEST_TIMEOUT_KEY,
    RUNNING_KEY,
    Settings,
)

_SETTINGS_KEY = pytest.StashKey["Settings"]()
_THREAD_ENGINE_KEY = pytest.StashKey[Any]()
_DRIVING_KEY = pytest.StashKey[bool]()


def _peer_installed() -> bool:
    """pytest-asyncio-cooperative is importable: leave its marker and options to it."""
    try:
        return importlib.util.find_spec("pytest_asyncio_cooperative") is not None
    except (ImportError, ValueError):
        return False


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plait-cooperative", "plait: cooperative async test runs")
    group.addoption(
        "--plait-cooperative-mode",
        dest="plait_cooperative_mode",
        choices=MODES,
        default=None,
        help="'strict' (default): only tests marked plait_cooperative run cooperatively; "
        "'auto': every async test not owned by pytest-asyncio does. "
        "ini: plait_cooperative_mode.",
    )
    group.addoption(
        "--plait-cooperative-max-tasks",
        dest="plait_cooperative_max_tasks",
        type=int,
        default=None,
        metavar="N",
        help=f"most cooperative tests running at once (0: no limit; default "
        f"{DEFAULT_MAX_TASKS}). ini: plait_cooperative_max_tasks.",
    )
    group.addoption(
        "--plait-cooperative-timeout",
        dest="plait_cooperative_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"fail a cooperative test whose setup and call take longer (0: no limit; "
        f"default {DEFAULT_TIMEOUT:g}). ini: plait_cooperative_timeout.",
    )
    group.addoption(
        "--plait-cooperative-concurrent-fixtures",
        dest="plait_cooperative_concurrent_fixtures",
        action="store_true",
        default=None,
        help="set up the fixtures a cooperative test requests concurrently (each in a task "
        "of its own; a fixture still waits for those it requests). "
        "ini: plait_cooperative_concurrent_fixtures; marker: concurrent_fixtures=True.",
    )
    parser.addini(
        "plait_cooperative_concurrent_fixtures",
        "set up the fixtures of a cooperative test concurrently (default false).",
        type="bool",
        default=False,
    )
    parser.addini(
        "plait_cooperative_mode",
        "'strict' or 'auto': which tests run cooperatively (see --plait-cooperative-mode).",
        default="",
    )
    parser.addini(
        "plait_cooperative_max_tasks",
        f"most cooperative tests running at once (default {DEFAULT_MAX_TASKS}; 0: no limit).",
        default="",
    )
    parser.addini(
        "plait_cooperative_timeout",
        f"per-test timeout in seconds of a cooperative test (default {DEFAULT_TIMEOUT:g}; "
        "0: no limit).",
        default="",
    )
    if not _peer_installed():
        # The pytest-asyncio-cooperative spellings, so that a suite written for it runs
        # unchanged. Registering them while the peer is installed would clash.
        group.addoption(
            "--max-asyncio-tasks",
            dest="plait_peer_max_tasks",
            type=int,
            default=None,
            help="alias of --plait-cooperative-max-tasks (pytest-asyncio-cooperative).",
        )
        group.addoption(
            "--asyncio-task-timeout",
            dest="plait_peer_timeout",
            type=float,
            default=None,
            help="alias of --plait-cooperative-timeout (pytest-asyncio-cooperative).",
        )
        parser.addini("max_asyncio_tasks", "alias of plait_cooperative_max_tasks.", default="")
        parser.addini("asyncio_task_timeout", "alias of plait_cooperative_timeout.", default="")


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:
        return None


def _number(config: pytest.Config, kind: type, names: list[tuple[str, str]], default: Any) -> Any:
    """The first of the (source, name) options that is set, converted to ``kind``."""
    for source, name in names:
        value = config.getoption(name, None) if source == "opt" else _ini(config, name)
        if value is None or value == "":
            continue
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise pytest.UsageError(
                f"plait cooperative: {name} must be a number, got {value!r}"
            ) from None
        if number < 0:
            raise pytest.UsageError(f"plait cooperative: {name} must be >= 0, got {value!r}")
        return number
    return default


def _asyncio_auto(config: pytest.Config) -> bool:
    """pytest-asyncio runs in auto mode (it then claims every async test)."""
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    mode = config.getoption("asyncio_mode", None) or _ini(config, "asyncio_mode")
    return str(mode) == "auto"


def _settings(config: pytest.Config) -> Settings:
    mode = config.getoption("plait_cooperative_mode", None) or _ini(
        config, "plait_cooperative_mode"
    )
    mode = (mode or "strict").strip()
    if mode not in MODES:
        raise pytest.UsageError(
            f"plait cooperative: plait_cooperative_mode must be one of {MODES}, got {mode!r}"
        )
    peer = _peer_installed()
    max_tasks = _number(
        config,
        int,
        [
            ("opt", "plait_cooperative_max_tasks"),
            ("opt", "plait_peer_max_tasks"),
            ("ini", "plait_cooperative_max_tasks"),
            ("ini", "max_asyncio_tasks"),
        ],
        DEFAULT_MAX_TASKS,
    )
    timeout = _number(
        config,
        float,
        [
            ("opt", "plait_cooperative_timeout"),
            ("opt", "plait_peer_timeout"),
            ("ini", "plait_cooperative_timeout"),
            ("ini", "asyncio_task_timeout"),
        ],
        DEFAULT_TIMEOUT,
    )
    markers = (MARKER,) if peer else (MARKER, PEER_MARKER)
    concurrent = config.getoption("plait_cooperative_concurrent_fixtures", None)
    if concurrent is None:
        concurrent = bool(_ini(config, "plait_cooperative_concurrent_fixtures"))
    return Settings(mode, max_tasks, timeout, markers, _asyncio_auto(config), concurrent)


def get_settings(config: pytest.Config) -> Settings:
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None:
        settings = config.stash[_SETTINGS_KEY] = _settings(config)
    return settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(timeout=None, concurrent_fixtures=None): run this test (or every test "
        "of the class or module) as a task on plait's shared event loop, concurrently with "
        "the other cooperative tests. timeout: seconds, overrides "
        "--plait-cooperative-timeout; concurrent_fixtures: set up its fixtures concurrently.",
    )
    settings = get_settings(config)
    if PEER_MARKER in settings.markers:
        config.addinivalue_line(
            "markers", f"{PEER_MARKER}: alias of {MARKER} (pytest-asyncio-cooperative)."
        )
    else:
        from plait.cooperative import PlaitCooperativeWarning

        config.issue_config_time_warning(
            PlaitCooperativeWarning(
                "pytest-asyncio-cooperative is installed, so plait leaves the "
                f"'{PEER_MARKER}' marker and the --max-asyncio-tasks/--asyncio-task-timeout "
                f"options to it; use '{MARKER}' and the --plait-cooperative-* options for "
                "plait, or uninstall pytest-asyncio-cooperative to migrate."
            ),
            stacklevel=2,
        )


def _is_async_test(item: pytest.Function) -> bool:
    func = item.obj
    hypothesis = getattr(func, "hypothesis", None)
    if getattr(func, "is_hypothesis_test", False) and hypothesis is not None:
        func = hypothesis.inner_test
    return inspect.iscoroutinefunction(func)


def _uses_async_fixture(item: pytest.Function) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if defs:
            func = defs[-1].func
            if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
                return True
    return False


def is_cooperative(item: pytest.Item, settings: Settings) -> bool:
    """Whether ``item`` runs on the shared loop."""
    if not isinstance(item, pytest.Function) or type(item).__name__ == "TestCaseFunction":
        return False
    if getattr(item.obj, "_plait_spec", None) is not None:
        return False  # @plait.explore runs its own schedules, one test at a time
    for _node, mark in item.iter_markers_with_node():
        if mark.name in settings.markers:
            return True
        if mark.name == "asyncio" and not settings.asyncio_auto:
            return False
    if settings.mode != "auto" or item.get_closest_marker("asyncio") is not None:
        return False
    return _is_async_test(item) or _uses_async_fixture(item)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    config = session.config
    if _is_xdist_worker(config):
        return None  # xdist drives the loop; see pytest_runtest_protocol below
    if session.testsfailed and not config.option.continue_on_collection_errors:
        raise session.Interrupted(
            f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} "
            "during collection"
        )
    if config.option.collectonly:
        return True
    if getattr(config.option, "setupplan", False):
        return None  # nothing runs: pytest's own loop shows the plan
    settings = get_settings(config)
    cooperative = [item for item in session.items if is_cooperative(item, settings)]
    if not cooperative:
        return None
    config.stash[_DRIVING_KEY] = True
    chosen = set(map(id, cooperative))
    rest = [item for item in session.items if id(item) not in chosen]
    for i, item in enumerate(rest):
        nextitem = rest[i + 1] if i + 1 < len(rest) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)

    from plait.cooperative._engine import run_cooperative

    run_cooperative(session, cooperative, settings)
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True


# When another loop drives the run (a pytest-xdist worker, or another plugin's
# pytest_runtestloop), items arrive one by one through pytest_runtest_protocol.
# Cooperative ones go to an event loop in a background thread; a non-cooperative item
# waits until the running cooperative tests have finished, then runs normally.


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    config = item.config
    if config.stash.get(_DRIVING_KEY, False):
        return None  # our own runtestloop is running the non-cooperative items
    if getattr(config.option, "setupplan", False):
        return None
    engine = config.stash.get(_THREAD_ENGINE_KEY, None)
    if is_cooperative(item, get_settings(config)):
        if engine is None:
            from plait.cooperative._xdist import ThreadedRun

            engine = config.stash[_THREAD_ENGINE_KEY] = ThreadedRun(
                item.session, get_settings(config)
            )
        engine.submit(item)
        return True
    if engine is not None:
        engine.drain(item)
    return None


def _close_thread_engine(session: pytest.Session) -> None:
    engine = session.config.stash.get(_THREAD_ENGINE_KEY, None)
    if engine is not None:
        del session.config.stash[_THREAD_ENGINE_KEY]
        engine.close()


@pytest.hookimpl(wrapper=True, specname="pytest_runtestloop")
def pytest_runtestloop_close_thread(session: pytest.Session) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        _close_thread_engine(session)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Another plugin's runtestloop wrapper may have run items after ours returned.
    _close_thread_engine(session)


# pytest-timeout: its timer is a SIGALRM or a thread that ends the process, one per
# process, which cannot time tests that run at the same time. For the tests plait runs,
# these hooks (tried first) take the settings instead, and plait applies the timeout to
# the test's task alone.


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    if RUNNING_KEY not in item.stash:
        return None
    item.stash[PYTEST_TIMEOUT_KEY] = settings
    return True


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    return True if RUNNING_KEY in item.stash else None
