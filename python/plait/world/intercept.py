"""Unannotated calls to the outside world, turned into external steps during an execution.

From an exploration's first execution to its end plait replaces the functions of ``os``,
``os.path``, ``builtins.open`` / ``io.open``, ``pathlib.Path``, ``shutil``, ``glob``,
``subprocess.Popen`` and ``socket.socket`` with wrappers, and puts the originals back when
it ends (outside an exploration nothing is patched and nothing is paid; between executions
a wrapper costs one global lookup and passes through).

Whose calls count: a file-system call is a step only when the function that called it is
the user's (not the standard library, not plait, not the test tooling: pytest, pluggy,
Hypothesis, coverage). importlib, linecache, tempfile or pathlib's own use of ``os.stat``
are invisible; third-party libraries are the user's. A few standard-library *trampolines*
call a function the user handed them, and count as the user: ``Thread.run``,
``ThreadPoolExecutor``'s work items, asyncio's ``Handle._run`` and the worker behind
``asyncio.to_thread`` / ``run_in_executor``. ``pathlib.Path`` methods are wrapped
themselves, so ``path.exists()`` is one step and its inner ``os.stat`` none.

Subprocesses and sockets count from any caller but plait and asyncio's own machinery
(``http.client`` connecting on the user's behalf is the user's effect); they write the
conservative ``OUTSIDE`` key.

A module that bound a function before the execution (``from os.path import exists``) keeps
the original: attribute calls (``os.path.exists``) are what is seen.
"""

from __future__ import annotations

import asyncio.events
import builtins
import concurrent.futures.thread
import glob
import io
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

from plait.world import _step, files
from plait.world.fileobj import File
from plait.world.files import CONSERVATIVE, call_text, show

Effects = Callable[..., Any]

# -- whose call ---------------------------------------------------------------------------------
_TOOLS = frozenset({"_pytest", "pytest", "pluggy", "hypothesis", "_hypothesis_pytestplugin",
                    "coverage", "xdist", "execnet", "pytest_asyncio", "pytest_django",
                    "pytest_rerunfailures", "iniconfig", "typeguard", "_virtualenv"})
_ASYNCIO = os.path.dirname(os.path.realpath(asyncio.events.__file__)) + os.sep
_SELECTORS = os.path.realpath(sys.modules["selectors"].__file__ or "")
_USER: dict[types.CodeType, bool] = {}  # file-system calls: is this caller the user's?
_NOT_PLAIT: dict[types.CodeType, bool] = {}  # sockets, subprocesses: is it not plait's?


def _nested(code: types.CodeType) -> Iterator[types.CodeType]:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from _nested(const)


# Code that calls the user's function on its behalf: a file-system call made from it is the
# user's (a thread's run, an executor's work item, a callback's handle).
_TRAMPOLINES: set[types.CodeType] = {
    threading.Thread.run.__code__, concurrent.futures.thread._WorkItem.run.__code__,
    asyncio.events.Handle._run.__code__}


def add_trampolines(*functions: Callable[..., Any]) -> None:
    """A driver's functions whose nested functions call the user's code for it (the asyncio
    driver's executor worker behind ``run_in_executor``/``to_thread``): calls made from those
    nested functions count as the user's. Drivers register them; this module imports no driver."""
    for function in functions:
        _TRAMPOLINES.update(_nested(function.__code__))
    _USER.clear()


def _site_top(real: str) -> str | None:
    """The top-level package of an installed file, or None when it is not installed."""
    for prefix in _step._SITE:
        if real.startswith(prefix):
            return real[len(prefix):].split(os.sep, 1)[0].removesuffix(".py")
    return None


def _is_tool_or_plait(filename: str) -> bool:
    if filename.startswith("<"):
        return filename.startswith("<frozen")
    real = os.path.realpath(filename)
    if real.startswith(_step._PLAIT) or filename.startswith(_step._PLAIT):
        return True
    top = _site_top(real)
    return top is not None and top in _TOOLS


def _classify_user(code: types.CodeType) -> bool:
    if code in _TRAMPOLINES:
        return True
    filename = code.co_filename
    if _is_tool_or_plait(filename):
        return False
    if filename.startswith("<"):
        return True  # exec'd or generated code the user ran
    real = os.path.realpath(filename)
    if _site_top(real) is not None:
        return True  # a third-party library, on the user's behalf
    return not real.startswith(_step._STDLIB)


def _classify_not_plait(code: types.CodeType) -> bool:
    filename = code.co_filename
    if _is_tool_or_plait(filename):
        return False
    real = os.path.realpath(filename)
    return not real.startswith(_ASYNCIO) and real != _SELECTORS


def _from_user(code: types.CodeType) -> bool:
    known = _USER.get(code)
    if known is None:
        known = _USER[code] = _classify_user(code)
    return known


def _from_not_plait(code: types.CodeType) -> bool:
    known = _NOT_PLAIT.get(code)
    if known is None:
        known = _NOT_PLAIT[code] = _classify_not_plait(code)
    return known


# -- the step -----------------------------------------------------------------------------------
_DIR_FD = ("dir_fd", "src_dir_fd", "dst_dir_fd")


def _external(sched: Any, frame: Any, name: str, args: tuple[Any, ...],
              kwargs: dict[str, Any], effects_of: Effects) -> None:
    if sched.me() is None:
        return
    try:
        if kwargs and any(kwargs.get(k) is not None for k in _DIR_FD):
            effects = CONSERVATIVE  # relative to a directory descriptor: path unknown
        else:
            effects = effects_of(*args, **kwargs)
    except Exception:  # a bad argument: the real call raises the user's error
        effects = CONSERVATIVE
    what = ""
    where = None
    if sched.trace is not None:
        what = call_text(name, args, kwargs)
        where = _step.user_frame(frame)
    _step.step(sched, what, effects, where, 0)


def _fs(name: str, orig: Callable[..., Any], effects_of: Effects) -> Callable[..., Any]:
    """A file-system function: a step when the user's code calls it."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sched = _step._SCHED
        if sched is not None:
            frame = sys._getframe(1)
            user = _USER.get(frame.f_code)  # inlined _from_user: this is the hot path
            if user is None:
                user = _from_user(frame.f_code)
            if user:
                _external(sched, frame, name, args, kwargs, effects_of)
        return orig(*args, **kwargs)

    return _named(wrapper, orig)


def _method(name: str, orig: Callable[..., Any], effects_of: Effects) -> Callable[..., Any]:
    """A ``pathlib.Path`` method: the report shows ``Path('/x').exists()``."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        sched = _step._SCHED
        if sched is not None:
            frame = sys._getframe(1)
            if _from_user(frame.f_code):
                _external(sched, frame, f"Path({show(self)}).{name}", args, kwargs,
                          lambda *a, **k: effects_of(self, *a, **k))
        return orig(self, *args, **kwargs)

    return _named(wrapper, orig)


def _opener(name: str, orig: Callable[..., Any], method: bool) -> Callable[..., Any]:
    """``open`` / ``io.open`` / ``Path.open``: a step, and a file whose reads and writes are."""

    def wrapper(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        sched = _step._SCHED
        if sched is None:
            return orig(file, mode, *args, **kwargs)
        frame = sys._getframe(1)
        if not _from_user(frame.f_code) or sched.me() is None:
            return orig(file, mode, *args, **kwargs)
        shown = f"Path({show(file)}).open" if method else name
        _external(sched, frame, shown, (mode,) if method else (file, mode), {},
                  lambda *_: files.opens(file, mode))
        return File(orig(file, mode, *args, **kwargs), file, mode)

    return _named(wrapper, orig)


def _lazy(name: str, orig: Callable[..., Any], effects_of: Effects,
          method: bool = False) -> Callable[..., Any]:
    """Generators and iterators (os.walk, scandir, iterdir, iglob): each item is read from
    the file system when it is taken, so each ``next`` is a step."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sched = _step._SCHED
        if sched is not None:
            frame = sys._getframe(1)
            if _from_user(frame.f_code):
                label = f"Path({show(args[0])}).{name}" if method else name
                text = call_text(label, args[1:] if method else args, kwargs)
                effects = effects_of(*args, **kwargs)
                _external(sched, frame, label, args[1:] if method else args, kwargs,
                          lambda *_a, **_k: effects)
                return _Items(orig(*args, **kwargs), effects, text)
        return orig(*args, **kwargs)

    return _named(wrapper, orig)


class _Items:
    """An iterator over the file system whose every ``next`` is an external step."""

    __slots__ = ("_effects", "_items", "_text")

    def __init__(self, items: Any, effects: Any, text: str) -> None:
        self._items = items
        self._effects = effects
        self._text = text

    def __iter__(self) -> _Items:
        return self

    def __next__(self) -> Any:
        sched = _step._SCHED
        if sched is not None:
            _step.step(sched, f"next item of {self._text}", self._effects, None, 2)
        return next(self._items)

    def __enter__(self) -> _Items:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._items, name)


def _outside(name: str, orig: Callable[..., Any], method: bool = False) -> Callable[..., Any]:
    """A subprocess or a socket call: the conservative key, from any caller but plait's."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sched = _step._SCHED
        if sched is not None:
            frame = sys._getframe(1)
            if _from_not_plait(frame.f_code):
                _external(sched, frame, name, args[1:] if method else args, kwargs,
                          files.conservative)
        return orig(*args, **kwargs)

    return _named(wrapper, orig)


def _named(wrapper: Any, orig: Any) -> Any:
    for attr in ("__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(orig, attr))
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = orig
    wrapper._plait_world = True
    return wrapper


# -- the table ----------------------------------------------------------------------------------
def _table() -> list[tuple[Any, str, Callable[[str, Any], Any]]]:
    """(owner, attribute, how to wrap the current value)."""
    reads, writes, lists = files.reads, files.writes, files.lists

    def fs(effects: Effects, label: str) -> Callable[[str, Any], Any]:
        return lambda name, orig: _fs(label or name, orig, effects)

    def method(effects: Effects) -> Callable[[str, Any], Any]:
        return lambda name, orig: _method(name, orig, effects)

    def first(effects: Effects) -> Effects:
        return lambda path=".", *args, **kwargs: effects(path)

    table: list[tuple[Any, str, Callable[[str, Any], Any]]] = []
    for name in ("stat", "lstat", "access", "readlink"):
        table.append((os, name, fs(first(reads), f"os.{name}")))
    for name in ("exists", "lexists", "isfile", "isdir", "islink", "getsize", "getmtime",
                 "getatime", "getctime"):
        table.append((os.path, name, fs(first(reads), f"os.path.{name}")))
    table.append((os.path, "samefile", fs(lambda a, b: reads(a, b), "os.path.samefile")))
    for name in ("chmod", "utime", "truncate", "chown"):
        table.append((os, name, fs(first(writes), f"os.{name}")))
    for name in ("mkdir", "remove", "unlink", "rmdir"):
        table.append((os, name, fs(first(writes), f"os.{name}")))
    table.append((os, "makedirs", fs(
        lambda name, mode=0o777, exist_ok=False: files.makedirs(name, exist_ok),
        "os.makedirs")))
    for name in ("rename", "replace"):
        table.append((os, name, fs(lambda src, dst, **_: files.renames(src, dst),
                                   f"os.{name}")))
    table.append((os, "link", fs(lambda src, dst, **_: reads(src) + writes(dst), "os.link")))
    table.append((os, "symlink", fs(lambda src, dst, *a, **_: writes(dst), "os.symlink")))
    table.append((os, "listdir", fs(first(lists), "os.listdir")))
    table.append((os, "open", fs(files.os_opens, "os.open")))
    for name in ("renames", "removedirs"):
        table.append((os, name, fs(files.conservative, f"os.{name}")))
    for name in ("rmtree", "copytree", "move"):
        table.append((shutil, name, fs(files.conservative, f"shutil.{name}")))
    for name in ("copyfile", "copy", "copy2"):
        table.append((shutil, name, fs(lambda src, dst, **_: files.copies(src, dst),
                                       f"shutil.{name}")))
    table.append((glob, "glob", fs(files.conservative, "glob.glob")))
    table.append((os, "scandir", lambda name, orig: _lazy("os.scandir", orig, first(lists))))
    table.append((os, "walk", lambda name, orig: _lazy("os.walk", orig, files.conservative)))
    table.append((glob, "iglob", lambda name, orig: _lazy("glob.iglob", orig,
                                                          files.conservative)))
    table.append((builtins, "open", lambda name, orig: _opener("open", orig, False)))
    table.append((io, "open", lambda name, orig: _opener("open", orig, False)))
    path = pathlib.Path
    table.append((path, "open", lambda name, orig: _opener("open", orig, True)))
    for name in ("exists", "is_file", "is_dir", "is_symlink", "stat", "lstat", "read_text",
                 "read_bytes"):
        table.append((path, name, method(lambda self, *a, **k: reads(self))))
    table.append((path, "samefile", method(lambda self, other: reads(self, other))))
    for name in ("write_text", "write_bytes", "touch", "unlink", "rmdir"):
        table.append((path, name, method(lambda self, *a, **k: writes(self))))
    table.append((path, "mkdir", method(
        lambda self, mode=0o777, parents=False, exist_ok=False:
            files.makedirs(self, exist_ok) if parents else writes(self))))
    for name in ("rename", "replace"):
        table.append((path, name, method(lambda self, target: files.renames(self, target))))
    table.append((path, "iterdir", lambda name, orig: _lazy(
        "iterdir", orig, lambda self: lists(self), method=True)))
    for name in ("glob", "rglob", "walk"):
        if hasattr(path, name):
            table.append((path, name, lambda name, orig: _lazy(
                name, orig, files.conservative, method=True)))
    table.append((subprocess.Popen, "__init__",
                  lambda name, orig: _outside("subprocess.Popen", orig, method=True)))
    table.append((os, "system", lambda name, orig: _outside("os.system", orig)))
    for name in ("connect", "connect_ex", "bind", "listen", "accept", "send", "sendall",
                 "sendto", "recv", "recv_into", "recvfrom", "recvfrom_into", "shutdown"):
        table.append((socket.socket, name,
                      lambda name, orig: _outside(f"socket.{name}", orig, method=True)))
    return table


_TABLE: list[tuple[Any, str, Callable[[str, Any], Any]]] = []
_WRAPPERS: dict[tuple[Any, str], tuple[Any, Any]] = {}  # (owner, name) -> (original, wrapper)
_INSTALLED: list[tuple[Any, str, Any]] = []


def install() -> None:
    """Put the wrappers in place (built once, re-used); nothing if they already are."""
    if _INSTALLED:
        return
    if not _TABLE:
        _TABLE.extend(_table())
    for owner, name, wrap in _TABLE:
        current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name)
        if current is None:
            current = getattr(owner, name)
        if getattr(current, "_plait_world", False):
            continue  # already ours (a nested install)
        cached = _WRAPPERS.get((owner, name))
        if cached is None or cached[0] is not current:
            cached = (current, wrap(name, getattr(owner, name)))
            _WRAPPERS[(owner, name)] = cached
        had = name in owner.__dict__ if isinstance(owner, type) else True
        _INSTALLED.append((owner, name, current if had else None))
        setattr(owner, name, cached[1])


def uninstall() -> None:
    """Put every original back."""
    while _INSTALLED:
        owner, name, original = _INSTALLED.pop()
        if original is None:
            delattr(owner, name)  # it was inherited (pathlib on 3.13, socket's C methods)
        else:
            setattr(owner, name, original)
