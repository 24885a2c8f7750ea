"""The worker process: configure once, then run one call per message, released by the gate.

Started by ``_processes`` as a fresh interpreter (never a fork of the test process, whose
database sockets must not be shared). Messages from the parent:

    ("call", index, sync, target, payload)   sync: pickled dict (sys.path, cwd, env, Django)

and to the parent: ("hello", pid), ("ready", index), ("done", index, status, blob, tb, t0, t1).
Between "ready" and running the call the worker waits until the gate pipe becomes readable:
the parent writes one byte when every worker of the batch is ready, which wakes them all.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import sys
import time
import traceback
from typing import Any

from plait.concurrent import _wire
from plait.concurrent._calls import resolve
from plait.concurrent._errors import RemoteError


class Worker:
    def __init__(self, rfd: int, wfd: int, gate: int) -> None:
        self.rfd, self.wfd, self.gate = rfd, wfd, gate
        self.django_key: Any = None
        self.poller = select.poll()
        self.poller.register(gate, select.POLLIN)

    def send(self, message: tuple[Any, ...]) -> None:
        _wire.write_frame(self.wfd, _wire.dumps(message))

    def serve(self) -> None:
        self.send(("hello", os.getpid()))
        while True:
            frame = _wire.read_frame(self.rfd)
            if frame is None:  # the parent closed the pipe: the pool is shutting down
                return
            _kind, index, sync, target, payload = pickle.loads(frame)
            self.call(index, pickle.loads(sync), target, payload)

    def call(self, index: int, sync: dict[str, Any], target: Any, payload: bytes) -> None:
        failure: tuple[BaseException, str] | None = None
        function: Any = None
        args: Any = ()
        kwargs: Any = {}
        stack = contextlib.ExitStack()
        try:
            kind, spec, main_first = target
            self.apply(sync)
            if main_first:  # the script may set things up (Django) itself: let it go first
                _wire.load_main(sync["main"])
            self.apply_django(sync)
            if sync["django"] is not None:
                from plait.concurrent import _django

                stack.enter_context(_django.applied(sync["django"]))
                _django.connect(sync["django"])
            if kind == "pickle":
                function = _wire.loads(spec, sync["main"])
            elif main_first:
                function = _wire.load_main(sync["main"])
                for attr in spec.split(":", 1)[1].split("."):
                    function = getattr(function, attr)
            else:
                function = resolve(spec)
            args, kwargs = _wire.loads(payload, sync["main"])
        except BaseException as exc:
            failure = (exc, traceback.format_exc())
        self.send(("ready", index))
        while not self.poller.poll():
            pass
        started = time.time()
        if failure is None:
            try:
                value = function(*args, **kwargs)
                status, blob, text = "returned", _dump_value(value), ""
            except BaseException as exc:
                status, blob, text = "raised", _dump_exception(exc), traceback.format_exc()
        else:
            status, blob, text = "raised", _dump_exception(failure[0]), failure[1]
        finished = time.time()
        try:
            stack.close()  # Django: restore settings, close this call's connections
        except BaseException as exc:
            status, blob = "raised", _dump_exception(exc)
            text = f"{text}\nafter the call, cleaning up failed:\n{traceback.format_exc()}"
        if status == "returned" and blob is None:
            error = TypeError(
                f"the call returned {type(value).__qualname__}, which cannot be pickled"
            )
            status, blob, text = "raised", _dump_exception(error), f"TypeError: {error}\n"
        self.send(("done", index, status, blob, text, started, finished))

    def apply(self, sync: dict[str, Any]) -> None:
        if sys.path != sync["sys_path"]:
            sys.path[:] = sync["sys_path"]
        try:
            cwd = os.getcwd()
        except FileNotFoundError:  # an earlier test's temporary directory, since removed
            cwd = None
        if cwd != sync["cwd"]:
            os.chdir(sync["cwd"])
        if dict(os.environ) != sync["environ"]:
            os.environ.clear()
            os.environ.update(sync["environ"])

    def apply_django(self, sync: dict[str, Any]) -> None:
        django = sync["django"]
        if django is not None and self.django_key is None:
            from plait.concurrent import _django

            _django.setup(django)
            self.django_key = django["key"]


def _dump_value(value: Any) -> bytes | None:
    try:
        return _wire.dumps(value)
    except Exception:
        return None


def _dump_exception(exc: BaseException) -> bytes:
    """Pickle the exception if it survives the round trip, else a RemoteError standing in."""
    try:
        blob = _wire.dumps(exc)
        pickle.loads(blob)
        return blob
    except Exception:
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        return _wire.dumps(RemoteError(name, str(exc)))


def main(argv: list[str]) -> None:
    rfd, wfd, gate = (int(arg) for arg in argv)
    Worker(rfd, wfd, gate).serve()
