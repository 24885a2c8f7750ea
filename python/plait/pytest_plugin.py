"""plait's pytest plugin: options, the per-test context, saved failures, the summary.

Loading it makes ``threading.Lock`` and ``threading.RLock`` plait's (see
:mod:`plait.threads.locks`) before collection imports any test module, so locks made at
import time, in fixtures and in libraries' globals can be scheduled. Outside explorations
they are plain locks. It also makes ``sqlite3.connect`` plait's (:mod:`plait.sql`), so
connections made at import time and in fixtures are seen. Apart from that it imports
nothing heavy: the engine loads when the first explored test runs.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from plait import sql
from plait.threads.locks import install_types

install_types()
sql.install()  # sqlite3.connect (and later drivers) make connections whose statements are steps

_OPTIONS = (
    # (flag, ini key, settings field, help)
    ("--plait-strategy", "plait_strategy", "strategy",
     "exploration strategy: auto (default), dpor, dfs, random, pct"),
    ("--plait-budget", "plait_budget", "max_executions",
     "maximum executions per explored test (default 1000)"),
    ("--plait-max-seconds", "plait_max_seconds", "max_seconds",
     "maximum seconds per explored test (default 60)"),
    ("--plait-seed", "plait_seed", "seed", "seed for random/pct and the random module (default 0)"),
    ("--plait-timer-slack", "plait_timer_slack", "timer_slack",
     "timers due within this many seconds of each other may fire in any order (default 0.1)"),
    ("--plait-races", "plait_races", "races",
     "data races seen in a passing test: warn (default), error or ignore"),
    ("--plait-replay", "plait_replay", "replay",
     "replay this token (plait1:...) in the test it was recorded for (others run as usual)"),
    ("--plait-html", "plait_html", "html",
     "write an HTML timeline of each failing explored test into this directory"),
    ("--plait-html-races", "plait_html_races", "html_races",
     "with --plait-html: also write one for each RaceWarning (true/false)"),
    ("--plait-workers", "plait_workers", "workers",
     "processes exploring each test together (default 1; under pytest-xdist the ini value "
     "is ignored: each xdist worker explores alone unless --plait-workers says otherwise)"),
)

_CACHE_KEY = "plait/failures"
_SAVED = pytest.StashKey[tuple[dict[str, Any], dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plait", "plait: explore interleavings of asyncio tasks and threads")
    for flag, ini, _field, text in _OPTIONS:
        group.addoption(flag, dest=ini, default=None, help=text)
        parser.addini(ini, text, default=None)
    group.addoption("--plait-forget", dest="plait_forget", action="store_true", default=False,
                    help="do not re-run failures saved by earlier runs first")


class _CacheStore:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def _all(self) -> dict[str, str]:
        cache = getattr(self.config, "cache", None)
        return dict(cache.get(_CACHE_KEY, {})) if cache is not None else {}

    def get(self, key: str) -> str | None:
        return self._all().get(key)

    def set(self, key: str, token: str | None) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return
        data = self._all()
        if token is None:
            if data.pop(key, None) is None:
                return
        else:
            data[key] = token
        cache.set(_CACHE_KEY, data)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "plait: set by @plait.explore on explored tests (no need to add it by hand)"
    )
    from plait import settings
    from plait.errors import ConfigError

    ini: dict[str, Any] = {}
    cli: dict[str, Any] = {}
    for _flag, key, field, _text in _OPTIONS:
        value = config.getini(key)
        if key == "plait_workers" and _xdist_worker():
            value = None  # xdist already uses the cores: each worker explores alone
        if value not in (None, "", []):
            ini[field] = value
        value = config.getoption(key)
        if value is not None:
            cli[field] = value
    try:
        settings.Options().merged(**ini)
        settings.Options().merged(**cli)
    except ConfigError as exc:
        raise pytest.UsageError(f"plait: {exc}") from None
    config.stash[_SAVED] = (settings.ini_defaults, settings.cli_overrides)
    settings.ini_defaults = ini
    settings.cli_overrides = cli
    from plait.api import context

    context.saved_results.append(context.results)
    context.results = []
    context.replay_used = False


def _xdist_worker() -> bool:
    import os

    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def _unused_token(config: pytest.Config) -> str | None:
    """The --plait-replay token, if no test of the session was the one it was recorded for."""
    import sys

    api = sys.modules.get("plait.api")
    token = config.getoption("plait_replay")
    if not token or api is None or api.context.replay_used or not api.context.results:
        return None
    return str(token)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unused_token(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED, None)
    if saved is None:
        return
    from plait import settings
    from plait.api import context

    settings.ini_defaults, settings.cli_overrides = saved
    if context.saved_results:
        context.results = context.saved_results.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    function = getattr(item, "obj", None)
    if getattr(function, "_plait_spec", None) is None:
        return (yield)
    from plait.api import context

    context.name = item.name
    context.key = item.nodeid
    context.replay_hint = f"pytest '{item.nodeid}'"
    context.store = None if item.config.getoption("plait_forget") else _CacheStore(item.config)
    __tracebackhide__ = True
    from plait import progress

    context.progress = progress.for_item(item)
    try:
        return (yield)
    finally:
        context.name = context.key = context.replay_hint = None
        context.store = context.progress = None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    import sys

    api = sys.modules.get("plait.api")
    if api is None:
        return
    results = api.context.results
    if not results:
        return
    terminalreporter.section("plait")
    for result in results:
        terminalreporter.write_line(f"plait: {result.name}: {result.summary()}")
        for path in getattr(result, "html", ()):
            terminalreporter.write_line(f"plait: {result.name}: HTML timeline: {path}")
    if _unused_token(terminalreporter.config):
        terminalreporter.write_line(
            "plait: the --plait-replay token was recorded for none of the tests that ran (they "
            "were explored as usual): select the test whose report printed it", red=True)


# -- PostgreSQL for the user's tests (plait.sql.postgres; nothing imported until asked) ---------
@pytest.fixture(scope="session")
def plait_postgres() -> Generator[Any, None, None]:
    """A throwaway PostgreSQL server for this test session (``plait.sql.postgres``): unix
    socket only, fsync off, removed at the end. ``.dsn()``, ``.url()``, ``.connect_kwargs()``.
    Missing server binaries fail the test with what to install; it is never skipped."""
    from plait.sql import postgres

    owned = not postgres._SERVER or not postgres._SERVER[0].started
    try:
        server = postgres.session_server()
    except postgres.PostgresUnavailable as exc:
        pytest.fail(f"plait_postgres: PostgreSQL could not be started: {exc}", pytrace=False)
    yield server
    if owned:
        server.stop()


@pytest.fixture
def plait_postgres_db(plait_postgres: Any) -> Generator[Any, None, None]:
    """A fresh, empty database on ``plait_postgres`` for one test, dropped after it. In an
    explored test call ``plait_postgres_db.reset(SCHEMA)`` first: each execution then starts
    from the rows ``SCHEMA`` creates."""
    database = plait_postgres.create_database()
    yield database
    plait_postgres.drop_database(database.name)
