"""Footprints of file-system calls: which paths a call reads or changes.

A path is keyed by its normalized absolute form, its directory resolved through symlinks
(two names of one file are one key; the last component stays as written, so removing a
symlink is not removing its target): ``("file", "/tmp/x/log")``.

A directory's *listing* has a key of its own, ``("dir", "/tmp/x")``. Creating or removing an
entry must conflict with listing the directory, but two creations of different names must
not conflict with each other (disjoint paths explore one execution). With reads and writes
the closest sound relation inverts the roles: an entry's creation or removal *reads* the
listing key and a listing *writes* it, so two listings are also ordered (a harmless
over-approximation). Listing keys are kept out of race reports (``race=False``).

What paths cannot say conservatively writes ``OUTSIDE``: a renamed directory (every path
under it changes), recursive walks and globs, file descriptors.
"""

from __future__ import annotations

import os
from typing import Any

from plait.world._step import OUTSIDE, Effect, on_activate

_real_realpath = os.path.realpath
_real_exists = os.path.exists
_real_isdir = os.path.isdir
# Per-execution caches (a directory's real path may change between executions): under
# 3.11's tracer every Python call costs, and a path is usually touched many times.
_REAL: dict[str, str] = {}  # directory -> its real path
_NORM: dict[str, str] = {}  # absolute path as given -> canonical path
_READS: dict[str, tuple[Effect, ...]] = {}
_WRITES: dict[str, tuple[Effect, ...]] = {}
for _cache in (_REAL, _NORM, _READS, _WRITES):
    on_activate(_cache.clear)

CONSERVATIVE = (Effect(OUTSIDE, True, "the outside world", race=False),)


def norm(path: Any) -> str | None:
    """The canonical absolute path, or None for what is not a path (a file descriptor)."""
    if type(path) is str:
        known = _NORM.get(path)
        if known is not None:
            return known
    elif isinstance(path, int):
        return None
    text = os.fsdecode(os.fspath(path))
    absolute = os.path.abspath(text)
    head, tail = os.path.split(absolute)
    real = _REAL.get(head)
    if real is None:
        real = _real_realpath(head)
        _REAL[head] = real
    found = os.path.join(real, tail) if tail else real
    if text is path and text.startswith(os.sep):  # relative paths follow the cwd
        _NORM[text] = found
    return found


def _file(path: str, write: bool) -> Effect:
    return Effect(("file", path), write, path)


def _entry(path: str) -> Effect:
    """Creating or removing ``path`` changes its directory's listing (see the module doc)."""
    parent = os.path.dirname(path)
    return Effect(("dir", parent), False, f"the listing of {parent}", race=False)


def reads(*paths: Any) -> tuple[Effect, ...]:
    """exists, isfile, stat, a read: the metadata or content of each path."""
    if len(paths) == 1:
        key = norm(paths[0])
        if key is None:
            return CONSERVATIVE
        known = _READS.get(key)
        if known is None:
            known = _READS[key] = (_file(key, False),)
        return known
    found: tuple[Effect, ...] = ()
    for path in paths:
        found += reads(path)
    return found


def writes(*paths: Any) -> tuple[Effect, ...]:
    """Content or metadata changed, the entry maybe created: open for writing, truncate."""
    if len(paths) == 1:
        key = norm(paths[0])
        if key is None:
            return CONSERVATIVE
        known = _WRITES.get(key)
        if known is None:
            known = _WRITES[key] = (_file(key, True), _entry(key))
        return known
    found: tuple[Effect, ...] = ()
    for path in paths:
        found += writes(path)
    return found


creates = removes = writes


def lists(path: Any = ".") -> tuple[Effect, ...]:
    """listdir, scandir, iterdir: the directory itself and its listing."""
    key = norm(path)
    if key is None:
        return CONSERVATIVE
    return (_file(key, False), Effect(("dir", key), True, f"the listing of {key}", race=False))


def renames(src: Any, dst: Any) -> tuple[Effect, ...]:
    source = norm(src)
    if source is None or _real_isdir(source):
        return CONSERVATIVE  # every path under a renamed directory changes
    return writes(src, dst)


def makedirs(path: Any, exist_ok: bool = False) -> tuple[Effect, ...]:
    """The missing ancestors are created; the first existing one is read."""
    key = norm(path)
    if key is None:
        return CONSERVATIVE
    found: list[Effect] = []
    while True:
        if _real_exists(key):
            found.append(_file(key, False))
            break
        found += (_file(key, True), _entry(key))
        parent = os.path.dirname(key)
        if parent == key:
            break
        key = parent
    return tuple(found)


def copies(src: Any, dst: Any) -> tuple[Effect, ...]:
    target = norm(dst)
    source = norm(src)
    if target is None or source is None:
        return CONSERVATIVE
    if _real_isdir(target):
        target = os.path.join(target, os.path.basename(source))
    return reads(source) + writes(target)


def opens(file: Any, mode: str = "r") -> tuple[Effect, ...]:
    if not isinstance(mode, str):
        return CONSERVATIVE
    if any(flag in mode for flag in "wax+"):
        return writes(file)
    return reads(file)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def os_opens(path: Any, flags: int = 0, *args: Any, **kwargs: Any) -> tuple[Effect, ...]:
    return writes(path) if flags & _WRITE_FLAGS else reads(path)


def conservative(*args: Any, **kwargs: Any) -> tuple[Effect, ...]:
    return CONSERVATIVE


# -- report text -------------------------------------------------------------------------------
def show(value: Any) -> str:
    """A call argument as the report prints it: repr, long paths and data cut."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and os.sep in value and len(value) > 48:
        parts = value.split(os.sep)
        if len(parts) > 4:
            value = os.sep.join([*parts[:2], "...", *parts[-2:]])
    text = repr(value)
    return text if len(text) <= 60 else text[:45] + "..." + text[-10:]


def call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"
