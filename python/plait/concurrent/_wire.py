"""Length-prefixed pickle frames over pipes, shared by the parent and the worker processes.

Frames have no size limit (8-byte length), so arguments and results of any size travel
without touching argv or the environment.
"""

from __future__ import annotations

import io
import os
import pickle
import runpy
import struct
import types
from typing import Any

HEADER = struct.Struct("!Q")
PROTOCOL = pickle.HIGHEST_PROTOCOL


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=PROTOCOL)


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    """Block for one frame; None when the other side closed the pipe."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    return read_exact(fd, HEADER.unpack(header)[0])


class FrameBuffer:
    """Collects bytes read without blocking and hands out whole frames."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk

    def frames(self) -> list[bytes]:
        out = []
        while len(self.data) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.data)
            if len(self.data) < HEADER.size + size:
                break
            out.append(bytes(self.data[HEADER.size : HEADER.size + size]))
            del self.data[: HEADER.size + size]
        return out


class MainAwareUnpickler(pickle.Unpickler):
    """Resolves ``__main__.x`` to the parent's main script, loaded as ``__mp_main__``.

    Functions defined in a script run as ``python script.py`` pickle as ``__main__.f``; in a
    worker ``__main__`` is the worker itself, so load the script (guarded by
    ``if __name__ == "__main__"``, as for multiprocessing's spawn) under another name.
    """

    main_path: str | None = None

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__":
            main = load_main(self.main_path)
            value: Any = main
            for part in name.split("."):
                value = getattr(value, part)
            return value
        return super().find_class(module, name)


_main: types.ModuleType | None = None  # not sys.modules["__mp_main__"]: multiprocessing's
# import points that name at the worker's own __main__


def load_main(path: str | None) -> types.ModuleType:
    global _main
    if _main is not None:
        return _main
    if not path:
        raise ImportError(
            "the function is defined in the parent's __main__, which worker processes cannot "
            "import: move it to a module, or pass 'package.module:function'"
        )
    module = types.ModuleType("__mp_main__")
    module.__file__ = path
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))
    _main = module
    return module


def loads(data: bytes, main_path: str | None = None) -> Any:
    unpickler = MainAwareUnpickler(io.BytesIO(data))
    unpickler.main_path = main_path
    return unpickler.load()
