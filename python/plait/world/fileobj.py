"""What ``open()`` returns to the user's code during an execution: the real file object,
with each call that reaches the file (a read, a write, a flush or close that writes) an
external step on the file's key.

A proxy, because the io classes are C types whose methods cannot be patched: attribute
access (``name``, ``mode``, ``closed``, ``seek``, ``fileno``...) goes to the real file, but
``isinstance(f, io.TextIOWrapper)`` is False for it.
"""

from __future__ import annotations

from typing import Any

from plait.world import _step
from plait.world.files import CONSERVATIVE, Effect, norm, show


def _op(file: File, name: str, args: tuple[Any, ...], write: bool) -> None:
    sched = _step._SCHED
    if sched is None:
        return
    effects = file._plait_writes if write else file._plait_reads
    what = ""
    if sched.trace is not None:
        shown = ", ".join(show(a) for a in args)
        prep = "of" if name in ("close", "flush") else "to" if write else "from"
        what = f"{name}({shown}) {prep} {show(file._plait_path)}"
    _step.step(sched, what, effects, None, 3)


class File:
    """An open file of the user's; ``_plait_file`` is the real one."""

    __slots__ = ("__weakref__", "_plait_file", "_plait_path", "_plait_reads", "_plait_writable",
                 "_plait_writes")

    def __init__(self, real: Any, path: Any, mode: str) -> None:
        self._plait_file = real
        self._plait_path = path
        key = norm(path)
        if key is None:  # a file descriptor: the path is unknown
            self._plait_reads = self._plait_writes = CONSERVATIVE
        else:
            self._plait_reads = (Effect(("file", key), False, key),)
            self._plait_writes = (Effect(("file", key), True, key),)
        self._plait_writable = isinstance(mode, str) and any(c in mode for c in "wax+")

    # reads
    def read(self, *args: Any) -> Any:
        _op(self, "read", args, False)
        return self._plait_file.read(*args)

    def read1(self, *args: Any) -> Any:
        _op(self, "read1", args, False)
        return self._plait_file.read1(*args)

    def readinto(self, buffer: Any) -> Any:
        _op(self, "readinto", (), False)
        return self._plait_file.readinto(buffer)

    def readline(self, *args: Any) -> Any:
        _op(self, "readline", args, False)
        return self._plait_file.readline(*args)

    def readlines(self, *args: Any) -> Any:
        _op(self, "readlines", args, False)
        return self._plait_file.readlines(*args)

    def __iter__(self) -> File:
        return self

    def __next__(self) -> Any:
        _op(self, "next line", (), False)
        return next(self._plait_file)

    # writes
    def write(self, data: Any) -> Any:
        _op(self, "write", (data,), True)
        return self._plait_file.write(data)

    def writelines(self, lines: Any) -> None:
        _op(self, "writelines", (), True)
        self._plait_file.writelines(lines)

    def truncate(self, *args: Any) -> Any:
        _op(self, "truncate", args, True)
        return self._plait_file.truncate(*args)

    def flush(self) -> None:
        if self._plait_writable and not self._plait_file.closed:
            _op(self, "flush", (), True)
        self._plait_file.flush()

    def close(self) -> None:
        if self._plait_writable and not self._plait_file.closed:
            _op(self, "close", (), True)  # buffered data reaches the file now
        self._plait_file.close()

    def __enter__(self) -> File:
        self._plait_file.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plait_file, name)

    def __repr__(self) -> str:
        return repr(self._plait_file)
