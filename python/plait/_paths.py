"""Which source files are plait's own (or the libraries it stands in for), by real path.

Frames are told apart by where the *installed* package lives, never by a substring such as
``"/plait/"``: a user's project (or a clone of plait itself) may well sit in a folder of that
name, and its frames are the user's.
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import threading


def _dirs(path: str) -> tuple[str, ...]:
    folder = os.path.dirname(path)
    return tuple({os.path.abspath(folder) + os.sep, os.path.realpath(folder) + os.sep})


PLAIT_DIRS = _dirs(__file__)
ASYNCIO_DIRS = _dirs(asyncio.__file__)
THREADING_FILES = tuple({os.path.abspath(threading.__file__), os.path.realpath(threading.__file__)})
_STDLIB = {os.path.dirname(os.__file__)} | {
    path for key in ("stdlib", "platstdlib") if (path := sysconfig.get_paths().get(key))}
STDLIB_DIRS = tuple(sorted({convert(p) + os.sep for p in _STDLIB
                            for convert in (os.path.abspath, os.path.realpath)}))

_cache: dict[str, bool] = {}
_lib_cache: dict[str, bool] = {}


def is_plait_file(filename: str) -> bool:
    """Is ``filename`` a module of the plait package itself?"""
    known = _cache.get(filename)
    if known is None:
        known = filename.startswith(PLAIT_DIRS) or (
            not filename.startswith("<") and os.path.realpath(filename).startswith(PLAIT_DIRS))
        _cache[filename] = known
    return known


def is_library_file(filename: str) -> bool:
    """plait's own modules, asyncio's and threading's: code a report should look through."""
    known = _lib_cache.get(filename)
    if known is None:
        real = filename if filename.startswith("<") else os.path.realpath(filename)
        known = is_plait_file(filename) or filename.startswith(ASYNCIO_DIRS) \
            or real.startswith(ASYNCIO_DIRS) or filename in THREADING_FILES \
            or real in THREADING_FILES
        _lib_cache[filename] = known
    return known


def short_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it, as reports show it."""
    if path.startswith("<"):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def user_frame(depth: int = 2) -> tuple[str, int, str] | None:
    """(file, line, function) of the innermost frame, ``depth`` frames up from the caller of
    this function's caller, that is neither the standard library's nor plait's."""
    frame: object = sys._getframe(depth)
    while frame is not None:
        code = frame.f_code  # type: ignore[attr-defined]
        name = code.co_filename
        if not name.startswith(STDLIB_DIRS) and not is_plait_file(name):
            return (name, frame.f_lineno, code.co_name)  # type: ignore[attr-defined]
        frame = frame.f_back  # type: ignore[attr-defined]
    return None
