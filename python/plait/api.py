"""The public decorators: ``explore``, ``replay``, and the explicit scheduling ``point``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar

from plait import settings
from plait.errors import ConfigError, InterleavingFailure
from plait.result import ExplorationResult

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["ExplorationResult", "explore", "point", "read", "replay", "write"]


class FailureStore(Protocol):
    """Where failing tokens of past runs are kept (the pytest cache, when under pytest)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, token: str | None) -> None: ...


class _Context:
    """What the pytest plugin tells the decorator about the test being run."""

    name: str | None = None
    key: str | None = None
    replay_hint: str | None = None
    replay_used = False  # a --plait-replay token found the test it was recorded for
    store: FailureStore | None = None
    progress: Any = None  # plait.progress.Progress, on a terminal
    # One list per pytest session (a stack, so that pytester's nested sessions keep apart).
    results: list[ExplorationResult] = []
    saved_results: list[list[ExplorationResult]] = []


context = _Context()


def _run(fn: Callable[..., Any], spec: dict[str, Any], args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> ExplorationResult:
    __tracebackhide__ = True
    from plait import runner

    options = settings.resolve(spec)
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise ConfigError(
            f"@plait.explore needs an `async def` or a plain `def` test; {fn.__qualname__} "
            "is a generator"
        )
    name = context.name or getattr(fn, "__qualname__", None) or repr(fn)
    options = options.merged(test=str(getattr(fn, "__qualname__", "") or ""))
    options = _replay_for_this_test(options, spec)
    hint = context.replay_hint
    store = context.store if context.key else None

    body = runner.Body(lambda: fn(*args, **kwargs), inspect.iscoroutinefunction(fn))
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is not None:
        body.where = (code.co_filename, code.co_firstlineno)

    if store is not None and options.replay is None:
        saved = store.get(context.key or "")
        if saved:
            try:
                runner.explore(body, options.merged(replay=saved), name, hint)
            except InterleavingFailure as failure:
                failure.args = (failure.report + "\n(plait re-ran this failure, saved from an "
                                "earlier run, before exploring anew.)",)
                raise
            except Exception:
                pass
            store.set(context.key or "", None)
    try:
        result = runner.explore(body, options, name, hint, context.progress)
    except InterleavingFailure as failure:
        if store is not None and options.replay is None:
            store.set(context.key or "", failure.token)
        if context.key:
            context.results.append(failure.result or _result_of(failure, name, options))
        raise
    if context.key:
        context.results.append(result)
    return result


def _replay_for_this_test(options: settings.Options, spec: dict[str, Any]) -> settings.Options:
    """A token given on the command line replays the test it was recorded for; the other
    tests run as usual. (A token given to @plait.replay is checked in the runner.)"""
    cli_token = settings.cli_overrides.get("replay")
    if not cli_token or options.replay != str(cli_token).strip() or spec.get("replay"):
        return options
    from plait.runner import token_belongs_to

    if token_belongs_to(options.replay or "", options.test):
        context.replay_used = True
        return options
    return options.merged(replay="")


def _result_of(failure: InterleavingFailure, name: str, options: settings.Options) -> ExplorationResult:
    stats = failure.stats
    result = ExplorationResult(name=name, strategy=str(stats.get("strategy", options.strategy)))
    result.executions = int(stats.get("executions", 0))  # type: ignore[call-overload]
    result.exhausted = bool(stats.get("exhausted", False))
    result.failure = failure
    return result


def _wrap(fn: Callable[..., Any], spec: dict[str, Any]) -> Callable[..., Any]:
    inner_spec = getattr(fn, "_plait_spec", None)
    if inner_spec is not None:  # stacked decorators: the outer one's arguments win
        spec = {**inner_spec, **spec}
        fn = fn.__wrapped__  # type: ignore[attr-defined]
    settings.Options().merged(**spec)  # fail at decoration time on a bad argument

    @functools.wraps(fn)
    def test(*args: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True  # pytest shows the user's assertion and plait's report
        _run(fn, spec, args, kwargs)

    def explore_now(*args: Any, **kwargs: Any) -> ExplorationResult:
        """Run the exploration and return its result (raises InterleavingFailure on a failure)."""
        return _run(fn, spec, args, kwargs)

    test._plait_spec = spec  # type: ignore[attr-defined]
    test.explore = explore_now  # type: ignore[attr-defined]
    return test


def explore(fn: F | None = None, /, *, strategy: str | None = None,
            max_executions: int | None = None, max_seconds: float | None = None,
            seed: int | None = None, stop_on_first: bool | None = None,
            preemption_bound: int | None = None, delay_bound: int | None = None,
            pct_depth: int | None = None, timer_slack: float | None = None,
            granularity: str | None = None, atomicity: str | None = None,
            trace_modules: list[str] | None = None, skip_modules: list[str] | None = None,
            hang_timeout: float | None = None, races: str | None = None,
            shrink: bool | None = None, html: str | None = None,
            html_races: bool | None = None, workers: int | None = None,
            **misspelled: Any) -> Any:
    """Run the decorated ``async def`` test under many schedules.

    ``strategy``: ``auto`` (default: exhaustive ``dfs`` on half the budget, then ``pct``),
    ``dfs``, ``random`` or ``pct``. ``max_executions`` / ``max_seconds``: the budget.
    ``seed``: seeds ``random``, ``pct`` and the ``random`` module inside the test.
    ``stop_on_first``: stop at the first failing schedule (default True).
    ``preemption_bound`` / ``delay_bound``: bound the exhaustive search (CHESS, Emmi et al.).
    ``timer_slack``: timers due within this many seconds of the earliest may fire in any
    order (default 0.1; 0 keeps strict deadline order).

    Plain ``def`` tests run as the first thread actor; threads they start are actors too.
    ``granularity``: ``access`` (default: a scheduling point before each shared access in
    the user's code), ``line``, or ``sync`` (synchronization operations only).
    ``atomicity``: ``free-threaded`` (default) or ``gil`` (only switches a GIL build makes).
    ``trace_modules`` / ``skip_modules``: widen or narrow which code is traced.
    ``hang_timeout``: seconds a thread may run without reaching a scheduling point before
    it is reported as stuck in something plait does not control (default 10).
    ``shrink``: before reporting, look for the same failure with fewer deviations from the
    default schedule (default True; a budget of 500 executions or 10 seconds).
    ``races``: when the test passes, data races seen on the default schedule are reported
    as a ``plait.RaceWarning`` (``warn``, default), fail the test (``error``), or not
    (``ignore``).
    ``html``: a directory; a failure also writes an HTML timeline there (one lane per
    actor, the steps, the conflicting accesses, the token); ``html_races``: one for each
    ``RaceWarning`` too.
    ``workers``: processes that explore this test together (default 1): dpor splits its
    tree, random and pct split their seeds; the failure found is reported with a token that
    replays in one process (see ``plait.workers``).
    """
    if misspelled:
        raise ConfigError(settings.unknown_options("@plait.explore", misspelled))
    spec = {k: v for k, v in {
        "strategy": strategy, "max_executions": max_executions, "max_seconds": max_seconds,
        "seed": seed, "stop_on_first": stop_on_first, "preemption_bound": preemption_bound,
        "delay_bound": delay_bound, "pct_depth": pct_depth, "timer_slack": timer_slack,
        "granularity": granularity, "atomicity": atomicity,
        "trace_modules": None if trace_modules is None else tuple(trace_modules),
        "skip_modules": None if skip_modules is None else tuple(skip_modules),
        "hang_timeout": hang_timeout, "races": races, "shrink": shrink, "html": html,
        "html_races": html_races, "workers": workers,
    }.items() if v is not None}
    if fn is not None:
        if not callable(fn):
            raise ConfigError(f"@plait.explore takes options by keyword, got {fn!r}")
        return _wrap(fn, spec)
    return lambda f: _wrap(f, spec)


def replay(token: str) -> Callable[[F], F]:
    """Run the decorated test under exactly the schedule ``token`` describes."""
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(f"@plait.replay needs the token plait printed, got {token!r}")
    from plait.runner import decode_token

    decode_token(token.strip())  # a damaged token fails here, naming what is wrong

    def decorate(fn: F) -> F:
        return _wrap(fn, {"replay": token.strip()})  # type: ignore[return-value]

    return decorate


class _Point:
    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield  # a bare yield hands control back to the loop, like asyncio.sleep(0)


def point() -> _Point:
    """An explicit scheduling point. In a thread, ``plait.point()`` lets plait switch threads
    here; in a task, ``await plait.point()`` lets it switch tasks."""
    from plait.threads import primitives

    sched = primitives.ACTIVE
    if sched is not None and sched.me() is not None:
        import sys

        frame = sys._getframe(1)
        sched.point("plait.point()", None,
                    (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        me = sched.me()
        if me is not None:
            me.opaque = True  # what follows may touch state plait cannot see
    return _Point()


def _declare(obj: Any, name: str | None, write: bool) -> None:
    from plait.footprint import Access
    from plait.threads import primitives

    sched = primitives.ACTIVE
    if sched is None or sched.me() is None:
        return
    import sys

    frame = sys._getframe(2)
    where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
    label = f"{type(obj).__name__}" + (f".{name}" if name else "")
    access = Access(hash(("declared", id(obj), name)), write, label, where)
    sched.keep.append(obj)
    me = sched.me()
    if me is not None and me.no_points:
        sched.note(access)
        return
    sched.point(f"{'writes' if write else 'reads'} {label} (declared)", access, where)


def read(obj: Any, name: str | None = None) -> None:
    """Declare a read of ``obj`` (or of its part ``name``) that tracing cannot see, e.g. a
    C extension's state or a file: a scheduling point with that footprint."""
    _declare(obj, name, False)


def write(obj: Any, name: str | None = None) -> None:
    """Declare a write of ``obj`` (or of its part ``name``) that tracing cannot see."""
    _declare(obj, name, True)
