"""The exploration loop on the Python side: run the test body once per schedule the engine
proposes, keep the first failure, confirm it by replay, and build the report."""

from __future__ import annotations

import atexit
import gc
import os
import random
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from plait import _native
from plait._paths import is_library_file
from plait.aio.loop import PlaitLoop
from plait.aio.trace import StepTrace
from plait.errors import (
    ConfigError,
    InterleavingFailure,
    Nondeterminism,
    ReplayDivergence,
)
from plait.report import format_report
from plait.result import ExplorationResult
from plait.settings import (
    Options,
    decode_settings,
    encode_settings,
    test_fingerprint,
    token_test,
)
from plait.threads.scheduler import Hang

PYTHON = (sys.version_info[0], sys.version_info[1])


class Body:
    """The test body: an ``async def`` (run on the controlled loop) or a plain function (run
    as the first thread actor). ``execute`` runs it once under a chooser's schedule and
    returns (failure or None, what the report needs)."""

    def __init__(self, call: Callable[[], Any], is_async: bool) -> None:
        self.call = call
        self.is_async = is_async
        self.where: tuple[str, int] | None = None  # the test's definition, for warnings
        self.tracer: Any = None
        self.loop: PlaitLoop | None = None  # reused by the executions of one exploration
        self.saw_threads = False  # an execution ran more than one thread actor
        self._random: Any = None  # the caller's random state, restored when exploring ends
        self._cpus: frozenset[int] | None = None  # the CPU mask to restore (threads)

    def begin(self, options: Options) -> None:
        # Executions collect garbage between them; freezing what exists now keeps each
        # collection down to the objects the executions made.
        gc.freeze()
        # Each execution seeds `random`; the caller's state comes back once, at the end.
        self._random = random.getstate()
        self.saw_threads = False
        if not self.is_async:  # thread actors: hand off on one CPU (see threads.affinity)
            from plait.threads import affinity

            self._cpus = affinity.bind_one_cpu()
        from plait.world import _step as world_step

        world_step.hold()
        self._begin_tracer(options)

    def _begin_tracer(self, options: Options) -> None:
        # Tasks switch only at their awaits: tracing their code only serves the footprints
        # that dpor needs. Other strategies on asyncio skip the tracer (and its cost).
        if self.is_async and options.strategy not in ("auto", "dpor"):
            return
        if self.tracer is None:
            from plait.threads import make_tracer

            self.tracer = make_tracer(options, asyncio_internals=self.is_async)
            self.tracer.start()

    def end(self) -> None:
        gc.unfreeze()
        from plait.world import _step as world_step

        world_step.release()
        if self._cpus is not None:
            from plait.threads import affinity

            affinity.restore(self._cpus)
            self._cpus = None
        if self._random is not None:
            random.setstate(self._random)
            self._random = None
        if self.loop is not None:
            _park_loop(self.loop)
            self.loop = None
        if self.tracer is not None:
            self.tracer.stop()
            self.tracer = None

    def execute(self, chooser: Any, seed: int, options: Options, record: bool,
                footprints: bool = False) -> tuple[BaseException | None, Any]:
        """``footprints``: the engine reduces by footprints (dpor): give it each step's."""
        from plait.threads import primitives, run_threaded

        call = self.call
        trace: StepTrace | None = None
        outcome: dict[str, BaseException | None] = {}
        if self.is_async:
            trace = StepTrace() if record else None

            def call() -> None:  # the loop's thread is the first actor
                loop = self.loop if self.loop is not None and not self.loop.is_closed() else None
                if loop is None:
                    loop = self.loop = _spare_loop() or PlaitLoop(
                        chooser, timer_slack=options.timer_slack, trace=trace,
                        sched=primitives.ACTIVE)
                outcome["failure"] = run_execution(chooser, None, self.call, options.timer_slack,
                                                   trace, sched=primitives.ACTIVE, loop=loop)
        try:
            run = run_threaded(chooser, seed, call, self.tracer or _NO_TRACER, record=record,
                               hang_timeout=options.hang_timeout, event_loop=self.is_async,
                               record_footprints=footprints, restore_random=False)
        except _native.ReplayDivergence as exc:
            raise ReplayDivergence(str(exc)) from None
        except _native.Nondeterminism as exc:
            raise Nondeterminism(str(exc)) from None
        if run.sched is not None and len(run.sched.actors) > 1:
            self.saw_threads = True
        if self.is_async:
            failure = outcome.get("failure") or run.failure
            if trace is not None:
                trace.threads = run
            return failure, trace
        return run.failure, run


def _new_explorer(options: Options, strategy: str, max_executions: int,
                  max_seconds: float | None, **split: int) -> Any:
    """``split``: ``execution_offset`` / ``execution_stride`` (a worker's share of the seeds)."""
    try:
        return _native.Explorer(
            strategy=strategy,
            seed=options.seed,
            max_executions=max_executions,
            max_seconds=max_seconds,
            preemption_bound=options.preemption_bound,
            delay_bound=options.delay_bound,
            pct_depth=options.pct_depth,
            stop_on_first=options.stop_on_first,
            token=options.replay if strategy == "replay" else None,
            settings=encode_settings(options),
            python_version=PYTHON,
            **split,
        )
    except _native.TokenError as exc:
        raise ConfigError(f"cannot replay {options.replay!r}: {exc}") from None
    except _native.ConfigError as exc:
        raise ConfigError(str(exc)) from None


_SPARE = threading.local()  # a loop left reusable by the last exploration in this thread


def _spare_loop() -> PlaitLoop | None:
    """The loop the last exploration in this thread left, if this process made it (a fork
    shares the epoll instance with its parent: never reuse one across processes)."""
    spare = getattr(_SPARE, "loop", None)
    _SPARE.loop = None
    if spare is None:
        return None
    pid, loop = spare
    if pid == os.getpid() and loop.plait_reusable():
        return loop
    if pid == os.getpid():
        loop.close()
    return None


def _park_loop(loop: PlaitLoop) -> None:
    """Keep a reusable loop for the next exploration in this thread; close it otherwise."""
    old = getattr(_SPARE, "loop", None)
    if old is not None and old[0] == os.getpid() and old[1] is not loop:
        old[1].close()
    if loop.is_closed():
        _SPARE.loop = None
    elif loop.plait_reusable():
        _SPARE.loop = (os.getpid(), loop)
        _PARKED.add(loop)
    else:
        loop.close()
        _SPARE.loop = None


_PARKED: weakref.WeakSet[PlaitLoop] = weakref.WeakSet()


@atexit.register
def _close_parked() -> None:
    for loop in list(_PARKED):
        if not loop.is_closed() and not loop.is_running():
            loop.close()


class _NoTracer:
    """Stands in for the tracer when nothing is traced."""

    sched: Any = None

    def enable_in_this_thread(self) -> None:
        pass

    def thread_trace_function(self) -> None:
        return None


_NO_TRACER: Any = _NoTracer()


def run_execution(chooser: Any, seed: int | None, body: Callable[[], Coroutine[Any, Any, Any]],
                  timer_slack: float, trace: StepTrace | None = None,
                  sched: Any = None, loop: PlaitLoop | None = None) -> BaseException | None:
    """Run the body once under the chooser's schedule. Returns the failure, if any.

    ``loop``: a loop left by an earlier execution of the same exploration, reset and reused
    (``PlaitLoop.plait_reusable``); it is closed here only if it cannot serve again."""
    saved = random.getstate() if seed is not None else None
    if seed is not None:
        random.seed(seed)
    if loop is None:
        loop = PlaitLoop(chooser, timer_slack=timer_slack, trace=trace, sched=sched)
        keep = False
    else:
        loop.plait_reset(chooser, timer_slack=timer_slack, trace=trace, sched=sched)
        keep = True
    failure: BaseException | None = None
    try:
        try:
            loop.plait_run(body())
        except (_native.ReplayDivergence, _native.Nondeterminism):
            raise
        except Exception as exc:  # the test's own failure, or a deadlock
            failure = exc
        finally:
            try:
                loop.plait_finish()
            except Exception:
                keep = False
            if not keep or not loop.plait_reusable():
                loop.close()
    except _native.ReplayDivergence as exc:
        raise ReplayDivergence(str(exc)) from None
    except _native.Nondeterminism as exc:
        raise Nondeterminism(str(exc)) from None
    finally:
        if saved is not None:
            random.setstate(saved)
    return failure


def explore(body: Body, options: Options, name: str, replay_hint: str | None = None,
            progress: Any = None) -> ExplorationResult:
    """Explore ``body`` under ``options``. Raises InterleavingFailure when a schedule fails."""
    __tracebackhide__ = True
    body.begin(options)
    try:
        if options.replay is not None:
            return _replay(body, options, name, replay_hint)
        return _explore(body, options, name, replay_hint, progress)
    finally:
        body.end()


def _plan(options: Options, body: Body) -> Iterator[tuple[str, dict[str, Any]]]:
    """The phases of an exploration. ``auto`` starts exhaustive: on asyncio an unbounded DFS;
    on threads iterative preemption bounding (0, 1, 2... preemptions, CHESS: most bugs need
    few), which ends as a full DFS once a bound prunes nothing. PCT takes what is left."""
    if options.strategy != "auto":
        yield options.strategy, {}
        return
    # dpor takes no bound; with one, the bounded search is a dfs
    yield ("dfs" if options.preemption_bound is not None or options.delay_bound is not None
           else "dpor"), {}
    yield "pct", {}


def _explore(body: Body, options: Options, name: str, replay_hint: str | None,
             progress: Any = None) -> ExplorationResult:
    __tracebackhide__ = True
    started = time.monotonic()
    result = ExplorationResult(name=name, strategy=options.strategy)
    failure: tuple[str, BaseException, int] | None = None
    used: list[str] = []
    total = options.max_executions
    exhaustive_share = total if options.strategy != "auto" else max(1, total // 2)
    bounds: list[int] = []
    for strategy, overrides in _plan(options, body):
        if strategy in ("dfs", "dpor"):
            budget = exhaustive_share - result.executions
        else:
            budget = total - result.executions
        if budget <= 0:
            if strategy in ("dfs", "dpor") and options.strategy == "auto":
                continue  # on to pct
            break
        remaining = None if options.max_seconds is None else options.max_seconds - (time.monotonic() - started)
        if remaining is not None and remaining <= 0:
            break
        phase_options = options.merged(**overrides) if overrides else options
        explorer = None if options.workers > 1 else \
            _new_explorer(phase_options, strategy, budget, remaining)
        if "preemption_bound" in overrides:
            bounds.append(overrides["preemption_bound"])
        elif strategy not in used:
            used.append(strategy)
        if options.workers > 1:
            from plait import workers

            stats, found = workers.run_phase(body, phase_options, strategy, budget, remaining,
                                             result, progress)
        else:
            stats, found = _run_phase(body, options, explorer, strategy, result, progress)
        if found is not None and failure is None:
            failure = found
        result.executions += int(stats["executions"])
        result.steps += int(stats["steps"])
        result.redundant += int(stats.get("redundant", 0))
        result.exhausted = bool(stats["exhausted"])
        result.bounded = bool(stats["bounded"])
        result.stopped_by = str(stats["stopped_by"])
        if failure is not None and options.stop_on_first:
            break
        if result.exhausted and not result.bounded:
            break  # the whole space, nothing pruned
        if result.exhausted and strategy == "dfs" and "preemption_bound" in overrides:
            continue  # exhausted within this bound: raise it
        if result.exhausted:
            break
    if bounds:
        label = f"dfs(preemption bound {bounds[-1]})" if len(bounds) == 1 else \
            f"dfs(preemption bounds {bounds[0]}-{bounds[-1]})"
        used.insert(0, label)
    result.strategy = "+".join(used) if used else options.strategy
    if failure is None and options.races != "ignore":
        _check_races(body, options, name, replay_hint, result)
    result.elapsed = time.monotonic() - started
    if failure is not None:
        token, error, at = failure
        result.failed_at = at
        if options.shrink and not isinstance(error, Hang):  # a hang is not about the order
            token, error = _shrink(body, options, token, error, result)
        result.failure = _confirm_and_report(body, options, name, token, error, result, at,
                                             replay_hint)
        if progress is not None:
            progress.done(result.summary())
        raise result.failure
    if progress is not None:
        progress.done(result.summary())
    return result


def _run_phase(body: Body, options: Options, explorer: Any, strategy: str,
               result: ExplorationResult, progress: Any) -> tuple[dict[str, Any],
                                                                  tuple[str, BaseException, int] | None]:
    """One phase in this process: run the body once per schedule the explorer proposes.
    Returns the explorer's figures and the first failure (token, error, execution number)."""
    failure: tuple[str, BaseException, int] | None = None
    while explorer.start_execution():
        error, _ = body.execute(explorer, explorer.execution_seed(), options, False,
                                footprints=strategy == "dpor")
        explorer.end_execution(error is not None)
        if error is not None and failure is None:
            failure = (explorer.token(), error, result.executions + explorer.stats()["executions"])
        if progress is not None and progress.due():
            stats = explorer.stats()
            done = result.executions + int(stats["executions"])
            progress.update(strategy, done, done - result.redundant - int(stats["redundant"]),
                            options.max_executions, options.max_seconds)
    return dict(explorer.stats()), failure


def _signature(error: BaseException) -> tuple[type, str]:
    """What makes two failures the same failure: the exception type and where it was raised."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not is_library_file(f.filename)]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return type(error), where


def _shrink(body: Body, options: Options, token: str, error: BaseException,
            result: ExplorationResult) -> tuple[str, BaseException]:
    """Look for the same failure with fewer deviations from the default schedule: exhaustive
    searches bounded to 0, 1, 2... delays (Emmi et al.), within a small budget. The first
    bound that fails gives a schedule with the fewest context switches plait could find."""
    deviations = len(decode_token(token)["deviations"])
    if deviations <= 1:
        return token, error
    wanted = _signature(error)
    deadline = time.monotonic() + options.shrink_seconds
    spent = 0
    for bound in range(deviations):
        left = options.shrink_executions - spent
        seconds = deadline - time.monotonic()
        if left <= 0 or seconds <= 0:
            break
        explorer = _new_explorer(options.merged(delay_bound=bound), "dfs", left, seconds)
        while explorer.start_execution():
            try:
                found, _ = body.execute(explorer, explorer.execution_seed(), options, False)
            except (Nondeterminism, ReplayDivergence) as exc:
                # shrinking is best effort: report the schedule found (its replay is checked)
                result.notes.append(f"shrinking stopped: {exc}")
                return token, error
            explorer.end_execution(found is not None)
            if found is not None and _signature(found) == wanted:
                shorter = explorer.token()
                fewer = len(decode_token(shorter)["deviations"])
                if fewer < deviations:
                    result.notes.append(f"shrunk from {deviations} to {fewer} deviation(s) from "
                                        f"the default schedule")
                    return shorter, found
            if found is not None:
                pass  # another failure: keep looking for this one
        spent += int(explorer.stats()["executions"])
    return token, error


def _check_races(body: Body, options: Options, name: str, replay_hint: str | None,
                 result: ExplorationResult) -> None:
    """One more execution, on the default schedule, recording every access: races that
    no lock, start or join orders are reported even though the assertions held."""
    from plait import races

    if body.is_async and not body.saw_threads:
        return  # tasks alone: no execution had a second thread to race with
    explorer = _new_explorer(options, "dfs", 1, None)
    if not explorer.start_execution():  # pragma: no cover
        return
    error, trace = body.execute(explorer, explorer.execution_seed(), options, True)
    explorer.end_execution(error is not None)
    run = trace.threads if isinstance(trace, StepTrace) else trace
    if run is not None and len(run.sched.actors) > 1:
        if options.html and options.html_races and options.races != "ignore":
            found = races.find_races(run.sched)
            if found:
                warning = races.RaceWarning(f"{len(found)} data race(s), though the test passed:\n"
                                            + "\n".join(r.describe() for r in found))
                _write_html(options, name, replay_hint, trace, warning, explorer.token(), result)
        result.races = len(races.check(run.sched, options.races, name, body.where))


def _replay(body: Body, options: Options, name: str, replay_hint: str | None) -> ExplorationResult:
    __tracebackhide__ = True
    started = time.monotonic()
    info = decode_token(options.replay or "")
    if tuple(info["python_version"]) != PYTHON:
        import warnings

        recorded = ".".join(map(str, info["python_version"]))
        warnings.warn(
            f"plait token was recorded on Python {recorded}, replaying on "
            f"{PYTHON[0]}.{PYTHON[1]}: the schedule may not fit",
            RuntimeWarning,
            stacklevel=3,
        )
    saved_settings = bytes(info["settings"])
    if not token_belongs_to(options.replay or "", options.test):
        raise ConfigError(
            f"this token was recorded for another test, not {name} ({options.test}): replay it "
            f"against the test whose report printed it")
    options = options.merged(**decode_settings(saved_settings))
    explorer = _new_explorer(options, "replay", 1, None)
    result = ExplorationResult(name=name, strategy="replay")
    if not explorer.start_execution():  # pragma: no cover - a replay always has one execution
        return result
    error, trace = body.execute(explorer, explorer.execution_seed(), options, True)
    try:
        explorer.end_execution(error is not None)
    except _native.ReplayDivergence as exc:
        raise ReplayDivergence(str(exc)) from error
    result.executions = 1
    result.elapsed = time.monotonic() - started
    if error is not None:
        token = options.replay or ""
        report = format_report(name, trace, error, token, result, replay_hint, replayed=True)
        report += _write_html(options, name, replay_hint, trace, error, token, result)
        result.failure = InterleavingFailure(report, token, _stats_dict(result))
        result.failure.result = result
        raise result.failure from error
    return result


def token_belongs_to(token: str, test: str) -> bool:
    """Was ``token`` recorded for the test named ``test``? (True when either is unknown.)"""
    recorded = token_test(bytes(decode_token(token)["settings"]))
    wanted = test_fingerprint(test)
    return recorded == 0 or wanted == 0 or recorded == wanted


def decode_token(token: str) -> dict[str, Any]:
    try:
        return dict(_native.decode_token(token))
    except _native.TokenError as exc:
        raise ConfigError(f"cannot replay {token!r}: {exc}") from None


def _stats_dict(result: ExplorationResult) -> dict[str, object]:
    return {
        "executions": result.executions,
        "strategy": result.strategy,
        "exhausted": result.exhausted,
        "elapsed": result.elapsed,
    }


def _write_html(options: Options, name: str, replay_hint: str | None, trace: Any,
                error: BaseException, token: str, result: ExplorationResult) -> str:
    """With ``html``: the HTML timeline of this execution; returns the report's line for it."""
    if not options.html:
        return ""
    from plait import html_report

    try:
        path = html_report.write(options.html, name, replay_hint, trace, error, token,
                                 result.summary(), replay_hint, list(result.notes))
    except OSError as exc:
        raise ConfigError(f"plait option html={options.html!r}: cannot write the HTML "
                          f"timeline there: {exc}") from None
    result.html.append(path)
    return f"\nHTML timeline: {path}"


def _confirm_and_report(body: Body, options: Options, name: str, token: str,
                        error: BaseException, result: ExplorationResult, at: int,
                        replay_hint: str | None) -> InterleavingFailure:
    """Replay the failing schedule once more with step recording on, then build the report."""
    trace: Any = StepTrace()
    replayed: BaseException | None = None
    confirmed = True
    try:
        explorer = _new_explorer(options.merged(replay=token), "replay", 1, None)
        explorer.start_execution()
        replayed, trace = body.execute(explorer, explorer.execution_seed(), options, True)
        explorer.end_execution(replayed is not None)
    except (ReplayDivergence, Nondeterminism, _native.ReplayDivergence) as exc:
        result.notes.append(f"the confirming replay diverged: {exc}")
        confirmed = False
    if replayed is None or type(replayed) is not type(error):
        confirmed = False
        result.notes.append(
            "replaying the failing schedule did not fail the same way: the test depends on "
            "something plait does not control (real time, I/O, threads, os.urandom)"
        )
    shown = replayed if confirmed and replayed else error
    report = format_report(name, trace, shown, token, result, replay_hint, found_at=at,
                           confirmed=confirmed)
    report += _write_html(options, name, replay_hint, trace, shown, token, result)
    failure = InterleavingFailure(report, token, _stats_dict(result))
    failure.__cause__ = error
    failure.result = result
    return failure

