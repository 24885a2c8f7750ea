"""The processes backend: a warm pool of worker interpreters, reused across calls and tests.

Workers are fresh interpreters started with ``subprocess`` (the same guarantee as the
``spawn`` start method: nothing of the test process, in particular no database socket, is
inherited). They are started when first needed, grown to the largest batch seen, kept for
the rest of the session, and replaced when one dies, times out, or was set up for another
Django project. One batch runs at a time per pool.
"""

from __future__ import annotations

import atexit
import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait.concurrent import _django, _wire
from plait.concurrent._calls import Call, resolve
from plait.concurrent._errors import CallTimedOut, RemoteTraceback, WorkerDied
from plait.concurrent._result import CallResult

START_TIMEOUT = 60.0  # seconds for a new worker to say hello
_PLAIT_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys; sys.path.insert(0, {path!r}); "
    "from plait.concurrent._worker import main; main(sys.argv[1:])"
)


class _Worker:
    def __init__(self, gate: int) -> None:
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        fds = (to_child_r, from_child_w, gate)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(path=_PLAIT_PARENT), *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = _wire.FrameBuffer()
        self.django_key: Any = None
        self.label = f"process {self.proc.pid}"

    def send(self, payload: bytes) -> None:
        _wire.write_frame(self.to_child, payload)

    def read_available(self) -> list[Any] | None:
        """Messages now complete; None once the worker has closed its end (it died)."""
        chunk = os.read(self.from_child, 1 << 20)
        if not chunk:
            return None
        self.buffer.feed(chunk)
        return [pickle.loads(frame) for frame in self.buffer.frames()]

    def exit_description(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "closed its pipe but is still running"
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def stop(self, kill: bool) -> None:
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.gate_r, self.gate_w = os.pipe()

    # --- workers ---------------------------------------------------------------------------

    def _grow(self, size: int) -> None:
        new = [_Worker(self.gate_r) for _ in range(size - len(self.workers))]
        waiting = {w.from_child: w for w in new}
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            for fd in waiting:
                selector.register(fd, selectors.EVENT_READ)
            while waiting and time.monotonic() < deadline:
                for key, _ in selector.select(deadline - time.monotonic()):
                    worker = waiting[key.fd]
                    messages = worker.read_available()
                    if messages is None:
                        for w in new:
                            w.stop(kill=True)
                        raise RuntimeError(
                            f"a plait worker process {worker.exit_description()} while starting "
                            "(its error output, if any, is above)"
                        )
                    if messages:
                        selector.unregister(key.fd)
                        del waiting[key.fd]
        if waiting:
            for w in new:
                w.stop(kill=True)
            raise RuntimeError(f"plait worker processes did not start within {START_TIMEOUT} s")
        self.workers.extend(new)

    def _retire(self, worker: _Worker, kill: bool = True) -> None:
        worker.stop(kill=kill)
        self.workers.remove(worker)

    def shutdown(self) -> None:
        with self.lock:
            for worker in list(self.workers):
                os.close(worker.to_child)  # EOF: the worker returns from serve() and exits
                worker.to_child = -1
            for worker in list(self.workers):
                try:
                    worker.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                self._retire(worker, kill=worker.proc.poll() is None)

    # --- one batch -------------------------------------------------------------------------

    def run(self, calls: list[Call], timeout: float | None) -> list[CallResult]:
        for call in calls:  # a bad "module:function" fails here, as with threads
            resolve(call.target)
        targets = [_encode_target(call, i) for i, call in enumerate(calls)]
        payloads = [_encode_args(call, i) for i, call in enumerate(calls)]
        with self.lock:
            django = _django.snapshot()
            key = django["key"] if django else None
            for worker in list(self.workers):
                if worker.proc.poll() is not None:  # died while idle (killed from outside)
                    self._retire(worker, kill=False)
                elif worker.django_key is not None and worker.django_key != key:
                    self._retire(worker)
            if len(self.workers) < len(calls):
                self._grow(len(calls))
            main = getattr(sys.modules.get("__main__"), "__file__", None)
            sync = _wire.dumps(
                {
                    "sys_path": list(sys.path),
                    "cwd": os.getcwd(),
                    "environ": dict(os.environ),
                    "django": django,
                    "main": os.path.abspath(main) if main else None,
                }
            )
            batch = _Batch(self, self.workers[: len(calls)], calls, timeout)
            for index, worker in enumerate(batch.workers):
                try:
                    worker.send(_wire.dumps(("call", index, sync, targets[index], payloads[index])))
                except OSError as exc:  # BrokenPipeError: it died since the check above
                    batch._dead(index, worker, kill=True, why=f"sending the call failed ({exc})")
                if key is not None:
                    worker.django_key = key
            return batch.collect()


class _Batch:
    """Waits for every worker to be ready, opens the gate, collects the results."""

    def __init__(
        self, pool: Pool, workers: list[_Worker], calls: list[Call], timeout: float | None
    ):
        self.pool, self.workers, self.calls, self.timeout = pool, workers, calls, timeout
        self.results: dict[int, CallResult] = {}
        self.by_fd = {w.from_child: (i, w) for i, w in enumerate(workers)}

    def collect(self) -> list[CallResult]:
        gate_open = False
        try:
            with selectors.DefaultSelector() as selector:
                for fd, (index, _) in self.by_fd.items():
                    if index not in self.results:
                        selector.register(fd, selectors.EVENT_READ)
                ready: set[int] = set()

                def on_ready(message: tuple[Any, ...], index: int) -> None:
                    if message[0] == "ready":
                        ready.add(index)

                self._wait(selector, on_ready, ready)
                os.write(self.pool.gate_w, b"g")
                gate_open = True
                released = time.time()
                self._wait(selector, self._done, set(self.results), released)
        finally:
            for index, worker in enumerate(self.workers):
                if index not in self.results:  # interrupted: no worker may keep a stale batch
                    self._dead(index, worker, kill=True, why="the batch was interrupted")
            if gate_open:
                os.read(self.pool.gate_r, 1)  # every worker has passed the gate or is dead
        return [self.results[i] for i in range(len(self.workers))]

    def _wait(
        self,
        selector: selectors.BaseSelector,
        on_message: Callable[[tuple[Any, ...], int], None],
        finished: set[int],
        released: float | None = None,
    ) -> None:
        """Read messages until every live worker is in `finished`, or the timeout passes."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout

        def pending() -> list[int]:
            return [i for i in range(len(self.workers)) if i not in finished | self.results.keys()]

        while pending():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                for index in pending():
                    self._timed_out(index, released)
                return
            for key, _ in selector.select(left):
                index, worker = self.by_fd[key.fd]
                messages = worker.read_available()
                if messages is None:
                    selector.unregister(key.fd)
                    self._dead(index, worker, kill=False, why=None)
                    continue
                for message in messages:
                    on_message(message, index)

    def _done(self, message: tuple[Any, ...], index: int) -> None:
        _, _, status, blob, text, started, finished = message
        worker = self.workers[index]
        try:
            loaded = pickle.loads(blob)
        except Exception as exc:  # e.g. a class the parent cannot import
            status, loaded, text = (
                "raised",
                exc,
                f"{text}\n(unpickling in the test process failed: {exc!r})\n",
            )
        value = exception = None
        if status == "returned":
            value = loaded
        else:
            exception = loaded
            if isinstance(exception, BaseException) and text:
                exception.__cause__ = RemoteTraceback(text)
        self.results[index] = CallResult(
            index,
            status,
            value=value,
            exception=exception,
            traceback=text,
            started_at=started,
            finished_at=finished,
            worker=worker.label,
        )

    def _timed_out(self, index: int, released: float | None) -> None:
        worker = self.workers[index]
        phase = "finish" if released is not None else "get ready (import, unpickle, connect)"
        message = (
            f"call #{index} to {self.calls[index].name} did not {phase} within {self.timeout} s; "
            f"its worker {worker.label} was killed and will be replaced"
        )
        self.pool._retire(worker)
        self.results[index] = CallResult(
            index,
            "timed_out",
            exception=CallTimedOut(message),
            traceback=f"CallTimedOut: {message}\n",
            started_at=released,
            finished_at=time.time(),
            worker=worker.label,
        )

    def _dead(self, index: int, worker: _Worker, kill: bool, why: str | None) -> None:
        if kill:
            worker.proc.kill()
        how = why or f"the worker {worker.exit_description()}"
        message = f"call #{index} to {self.calls[index].name} got no result: {how} ({worker.label})"
        if worker in self.pool.workers:
            self.pool._retire(worker, kill=kill)
        self.results[index] = CallResult(
            index,
            "worker_died",
            exception=WorkerDied(message),
            traceback=f"WorkerDied: {message}\n",
            finished_at=time.time(),
            worker=worker.label,
        )


def _encode_target(call: Call, index: int) -> tuple[str, Any, bool]:
    """(kind, value, whether the worker must load the parent's __main__ script first)."""
    if isinstance(call.target, str):
        return ("path", call.target, call.target.startswith("__main__:"))
    try:
        return ("pickle", _wire.dumps(call.target), call.target.__module__ == "__main__")
    except Exception as exc:
        raise TypeError(
            f"calls[{index}]: {call.name} cannot be sent to a worker process ({exc}). "
            "Processes can run module-level functions, or 'package.module:function' strings; "
            "use backend='threads' for lambdas, closures and local functions"
        ) from None


def _encode_args(call: Call, index: int) -> bytes:
    try:
        return _wire.dumps((call.args, call.kwargs))
    except Exception as exc:
        raise TypeError(
            f"calls[{index}]: the arguments to {call.name} cannot be pickled for a worker "
            f"process ({exc}); use backend='threads' to pass them as they are"
        ) from None


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool:
    """The process's pool (a forked child gets its own, never its parent's workers)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = Pool()
            atexit.register(_pool.shutdown)
        return _pool


def shutdown() -> None:
    """Stop the warm worker processes now (they are also stopped at interpreter exit)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.shutdown()
        _pool = None
