"""The footprint vocabulary every driver feeds: accesses, their keys, and the engine's u64.

A step's *footprint* is the list of :class:`Access` es it made. The asyncio driver
(``plait.aio``), the threads driver (``plait.threads``) and the outside world's steps
(``plait.world``) all build them here and hand them to the engine as ``(key & U64, write)``
pairs; nothing in this module imports another part of plait, so those layers sit above it
and never need each other.

Keys must compare across executions (sleep sets and wakeup trees compare steps from
different runs) and across processes (workers splitting one exploration): canonical keys are
tuples of plain values hashed by :func:`key_hash` with blake2b over a typed encoding, never
``id()`` nor the salted ``hash()``.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

U64 = (1 << 64) - 1
"""The engine's keys are u64: Python-side keys are masked with it on the way in."""

Key = tuple[Any, ...]


@dataclass
class Access:
    key: int
    write: bool
    what: str  # human text: "Counter.value", "global total", "subscript"
    where: tuple[str, int, str] | None
    sync: bool = False  # a lock or thread start/end: orders steps, is never a data race


# -- stable keys ------------------------------------------------------------------------------
_HASHES: dict[Key, int] = {}


def _encode(part: Any, out: list[bytes]) -> None:
    kind = type(part)
    if kind is str:
        data = part.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(data))
        out.append(data)
    elif kind is bool:
        out.append(b"T" if part else b"F")
    elif kind is int:
        out.append(b"i%d;" % part)
    elif part is None:
        out.append(b"N")
    elif kind is tuple:
        out.append(b"(%d:" % len(part))
        for item in part:
            _encode(item, out)
        out.append(b")")
    elif kind is bytes:
        out.append(b"b%d:" % len(part))
        out.append(part)
    elif kind is float:
        out.append(b"f" + part.hex().encode())
    else:
        raise TypeError(
            f"plait.world: an effect key holds {part!r} of type {kind.__name__}; keys are "
            f"tuples of str, int, float, bool, bytes or None (canonical in every execution: "
            f"no objects, no id())")


def key_hash(key: Key) -> int:
    """The engine's 64-bit key for ``key``: the same in every execution and every process."""
    found = _HASHES.get(key) if type(key) is tuple else None
    if found is not None:
        return found
    if type(key) is not tuple or not key:
        raise TypeError(f"plait.world: an effect key must be a non-empty tuple, got {key!r}")
    out: list[bytes] = []
    _encode(key, out)
    value = int.from_bytes(hashlib.blake2b(b"".join(out), digest_size=8).digest(), "little")
    if len(_HASHES) > 100_000:  # a long exploration over many rows: keep memory bounded
        _HASHES.clear()
    _HASHES[key] = value
    return value


_SEQ = itertools.count(1)


def next_seq() -> int:
    """The next position of a recorded step in the one order every driver's steps ran in
    (increasing across executions; a timeline renumbers its steps from 1)."""
    return next(_SEQ)
