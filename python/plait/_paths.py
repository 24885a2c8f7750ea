"""Which source files are plait's own (or the libraries it stands in for), by real path.

Frames are told apart by where the *installed* package lives, never by a substring such as
``"/plait/"``: a user's project (or a clone of plait itself) may well sit in a folder of that
name, and its frames are the user's.
"""

from __future__ import annotations

import asyncio
import os
import threading


def _dirs(path: str) -> tuple[str, ...]:
    folder = os.path.dirname(path)
    return tuple({os.path.abspath(folder) + os.sep, os.path.realpath(folder) + os.sep})


PLAIT_DIRS = _dirs(__file__)
ASYNCIO_DIRS = _dirs(asyncio.__file__)
THREADING_FILES = tuple({os.path.abspath(threading.__file__), os.path.realpath(threading.__file__)})

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
