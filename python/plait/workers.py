"""Several worker processes for one exploration (``workers=N``, ``--plait-workers=N``).

The test's process forks N-1 helpers when a phase starts (after the fixtures ran and the
body was prepared: each helper inherits them, and re-runs the explored body per execution
exactly as the parent does). What they share out depends on the strategy:

- **random, pct**: the seeds. Execution number g of the exploration has seed
  ``mix(seed, g)`` whoever runs it; worker k runs ``g = k, k + N, k + 2N, ...`` within the
  budget. When one finds a failure at g, the others stop once past g, so the failure
  reported is the one with the lowest g: the one a single worker would have found first.
- **dpor**: the tree (:func:`_split_tree`). The parent runs the sequential algorithm, so
  the executions it counts are exactly one worker's (the 4-thread counter: 576,
  exhausted); helpers explore the subtrees of branches still pending in its wakeup trees
  (handed out as forced prefixes, a new one whenever a helper runs dry) and send back each
  execution's calls, which the parent replays into the engine instead of running the
  program again when its own search gets there.
- **dfs** (auto with a bound): one process.

A failure is reported with the parent's token, replayed in the parent: it replays in one
process. Nothing but the schedule crosses between processes, so an explored body must not
share outside state (files, a database) between executions of different workers.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any, cast

from plait import runner
from plait.errors import ConfigError, Nondeterminism, ReplayDivergence
from plait.settings import Options

Found = tuple[str, BaseException, int]
_INHERITED: list[Any] = []  # a helper keeps its parent's event loops (see _forget_parent_loops)
_ERRORS: dict[str, type[Exception]] = {"Nondeterminism": Nondeterminism,
                                       "ReplayDivergence": ReplayDivergence,
                                       "ConfigError": ConfigError}


def _real_thread_locks() -> None:
    """After a fork, threading remakes its bookkeeping locks with ``RLock()`` and
    ``_allocate_lock()``, which plait has made its own (plait.threads.locks): a thread
    started in an execution would then take a scheduled lock in ``Thread.start``. Put real
    ones back (this hook runs after threading's)."""
    real_rlock = getattr(threading, "_CRLock", None) or threading._PyRLock  # type: ignore[attr-defined]
    threading._active_limbo_lock = real_rlock()  # type: ignore[attr-defined]
    if hasattr(threading, "_shutdown_locks_lock"):
        threading._shutdown_locks_lock = _thread.allocate_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_real_thread_locks)


class WorkerFailed(RuntimeError):
    """A helper's failing schedule did not fail again when the parent replayed it."""


def run_phase(body: runner.Body, options: Options, strategy: str, budget: int,
              remaining: float | None, result: runner.ExplorationResult,
              progress: Any) -> tuple[dict[str, Any], Found | None]:
    """One phase of the exploration with ``options.workers`` processes: the figures of the
    whole phase (as one explorer's ``stats()``) and the first failure, if any."""
    if strategy in ("random", "pct"):
        return _split_seeds(body, options, strategy, budget, remaining, result, progress)
    # dfs and (for now) dpor run in one process
    note = f"workers={options.workers}: the {strategy} phase ran in one process"
    if note not in result.notes:
        result.notes.append(note)
    explorer = runner._new_explorer(options, strategy, budget, remaining)
    return runner._run_phase(body, options, explorer, strategy, result, progress)


# -- processes -----------------------------------------------------------------------------

def fork_helpers(body: runner.Body, count: int,
                 main: Callable[[int, Connection], None]) -> list[tuple[int, Connection]]:
    """Fork ``count`` helpers; helper k (1..count) runs ``main(k, connection)`` and exits.
    Returns (pid, connection) of each."""
    helpers: list[tuple[int, Connection]] = []
    for k in range(1, count + 1):
        ours, theirs = Pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():
            # 3.12+ warns that forking a process with threads may deadlock the child: the
            # helper only runs the explored body, whose threads plait starts itself
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the helper
            code = 0
            try:
                ours.close()
                for _pid, conn in helpers:
                    conn.close()
                _forget_parent_loops(body)
                _bind_cpu(body, k)
                main(k, theirs)
            except BaseException as exc:
                code = 1
                try:
                    theirs.send(("error", type(exc).__name__, str(exc), traceback.format_exc()))
                except Exception:
                    pass
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        theirs.close()
        helpers.append((pid, ours))
    return helpers


def reap(helpers: list[tuple[int, Connection]], *, kill: bool) -> None:
    """Wait for the helpers to exit (after killing them, with ``kill``)."""
    for pid, conn in helpers:
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        conn.close()


def raise_helper_error(k: int, message: tuple[Any, ...]) -> None:
    """A helper stopped on an exception: raise it here (plait's own kinds keep their type)."""
    _tag, kind, text, trace = message
    error = _ERRORS.get(kind)
    if error is not None:
        raise error(f"(in worker {k}) {text}")
    raise RuntimeError(f"plait worker {k} stopped on {kind}: {text}\n{trace}")


def _forget_parent_loops(body: runner.Body) -> None:
    """A forked helper shares its parent's epoll instances: it must neither reuse nor close
    the parent's event loops (closing one unregisters the parent's fds), so it keeps them
    referenced until it exits."""
    if body.loop is not None:
        _INHERITED.append(body.loop)
        body.loop = None
    spare = getattr(runner._SPARE, "loop", None)
    if spare is not None:
        _INHERITED.append(spare)
        runner._SPARE.loop = None


def _bind_cpu(body: runner.Body, k: int) -> None:
    """Thread explorations run on one CPU (plait.threads.affinity): each worker on its own."""
    mask = getattr(body, "_cpus", None)
    if not mask or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(mask)
    try:
        mine = os.sched_getaffinity(0)
        base = cpus.index(min(mine)) if len(mine) == 1 and min(mine) in cpus else 0
        os.sched_setaffinity(0, {cpus[(base + k) % len(cpus)]})
    except OSError:
        pass


def reproduce(body: runner.Body, options: Options, token: str, seen: str) -> BaseException:
    """The failure of ``token``, replayed in this process (``seen``: what the helper saw)."""
    explorer = runner._new_explorer(options.merged(replay=token), "replay", 1, None)
    explorer.start_execution()
    error, _ = body.execute(explorer, explorer.execution_seed(), options, False)
    explorer.end_execution(error is not None)
    if error is None:
        return WorkerFailed(f"a worker saw this schedule fail ({seen}), but it passed when "
                            "replayed in the test's process")
    return error


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- random and pct: the seeds -------------------------------------------------------------

def _split_seeds(body: runner.Body, options: Options, strategy: str, budget: int,
                 remaining: float | None, result: runner.ExplorationResult,
                 progress: Any) -> tuple[dict[str, Any], Found | None]:
    n = options.workers

    def share(k: int, conn: Connection | None) -> dict[str, Any]:
        """Worker k's executions g = k, k + n, ... below the budget; stops past a failure
        another worker found at a lower g."""
        count = len(range(k, budget, n))
        stats: dict[str, Any] = {"executions": 0, "steps": 0, "failures": 0,
                                 "stopped_by": "budget", "first": None}
        if count == 0:
            return stats
        explorer = runner._new_explorer(options, strategy, count, remaining,
                                        execution_offset=k, execution_stride=n)
        done = 0
        reported = time.monotonic()
        while True:
            index = k + n * done
            limit = board.limit(conn)
            if limit is not None and index > limit:
                stats["stopped_by"] = "failure"
                break
            if not explorer.start_execution():
                break
            error, _ = body.execute(explorer, explorer.execution_seed(), options, False)
            explorer.end_execution(error is not None)
            done += 1
            if error is not None and stats["first"] is None:
                stats["first"] = (index, explorer.token(), describe(error))
                if conn is None:
                    board.error = error
                board.failed(index, conn)
            if conn is not None and time.monotonic() - reported > 0.25:
                conn.send(("count", done))
                reported = time.monotonic()
            elif conn is None and progress is not None and progress.due():
                total = result.executions + done + sum(board.counts.values())
                progress.update(strategy, total, total, options.max_executions,
                                options.max_seconds)
        figures = explorer.stats()
        stats["executions"] = int(figures["executions"])
        stats["steps"] = int(figures["steps"])
        stats["failures"] = int(figures["failures"])
        if stats["stopped_by"] != "failure":
            stats["stopped_by"] = str(figures["stopped_by"])
        return stats

    board = _Board()

    def helper(k: int, conn: Connection) -> None:  # pragma: no cover - runs in a helper
        conn.send(("done", share(k, conn)))

    helpers = fork_helpers(body, n - 1, helper)
    board.helpers = helpers
    ok = False
    try:
        parts = {0: share(0, None)}
        while len(board.finished) < len(helpers):
            board.receive(block=True)
        parts.update(board.done)
        ok = True
    finally:
        reap(helpers, kill=not ok)
    firsts = [(p["first"], k) for k, p in parts.items() if p["first"] is not None]
    found: Found | None = None
    if firsts:
        (index, token, seen), k = min(firsts)
        error = board.error if k == 0 and board.error is not None else \
            reproduce(body, options, token, seen)
        found = (token, error, result.executions + index + 1)
    stopped = "failure" if found is not None and options.stop_on_first else \
        next((p["stopped_by"] for p in parts.values() if p["stopped_by"] != "None"), "budget")
    stats = {"executions": sum(p["executions"] for p in parts.values()),
             "steps": sum(p["steps"] for p in parts.values()),
             "failures": sum(p["failures"] for p in parts.values()),
             "exhausted": False, "bounded": False, "redundant": 0, "stopped_by": stopped,
             "per_worker": [parts[k]["executions"] for k in sorted(parts)]}
    result.notes.append(f"{n} workers split the {strategy} seeds: executions per worker "
                        f"{stats['per_worker']}")
    return stats, found


class _Board:
    """The lowest failing execution number known, shared through the parent."""

    def __init__(self) -> None:
        self.lowest: int | None = None
        self.error: BaseException | None = None  # the parent's own failure, if it had one
        self.helpers: list[tuple[int, Connection]] = []
        self.counts: dict[int, int] = {}
        self.finished: set[int] = set()
        self.done: dict[int, Any] = {}  # each helper's figures, once it is done

    def limit(self, conn: Connection | None) -> int | None:
        if conn is None:  # the parent: read what the helpers say
            self.receive(block=False)
        else:
            while conn.poll():
                message = conn.recv()
                if message[0] == "limit":
                    self.lowest = message[1] if self.lowest is None else min(self.lowest, message[1])
        return self.lowest

    def failed(self, index: int, conn: Connection | None) -> None:
        if conn is not None:
            conn.send(("fail", index))
        self._lower(index)

    def _lower(self, index: int) -> None:
        if self.lowest is not None and self.lowest <= index:
            return
        self.lowest = index
        for _pid, conn in self.helpers:
            try:
                conn.send(("limit", index))
            except OSError:  # that helper is done
                pass

    def receive(self, *, block: bool) -> list[tuple[int, tuple[Any, ...]]]:
        """Messages from the helpers (failures lower the limit, errors are raised)."""
        out: list[tuple[int, tuple[Any, ...]]] = []
        conns: dict[Any, int] = {conn: k for k, (_pid, conn) in enumerate(self.helpers, start=1)
                 if k not in self.finished}
        if not conns:
            return out
        ready = cast("list[Connection]", wait(list(conns), timeout=None if block else 0))
        for conn in ready:
            k = conns[conn]
            try:
                message: tuple[Any, ...] = conn.recv()
            except EOFError:
                raise RuntimeError(f"plait worker {k} exited without reporting") from None
            if message[0] == "fail":
                self._lower(message[1])
            elif message[0] == "count":
                self.counts[k] = message[1]
            elif message[0] == "error":
                raise_helper_error(k, message)
            else:
                if message[0] == "done":
                    self.finished.add(k)
                    self.done[k] = message[1]
                out.append((k, message))
        return out
