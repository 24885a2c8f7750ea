"""Two threads each append a line to a file, choosing mode 'w' when the file does not exist
yet and 'a' otherwise. When one thread's check and write straddle the other's, a line is
lost: both see no file and both truncate it, or one opens with 'w' (writing at offset 0 when
it closes) while the other appends.

`test_file_writers` finds it with no annotation (file-system calls are steps whose footprint
is the path); `test_file_writers_locked` holds a lock across the check and the write and
passes exhaustively.
"""

from __future__ import annotations

import os
import tempfile
import threading

import plait


def append_line(path: str, line: str, lock: threading.Lock | None = None) -> None:
    if lock is not None:
        with lock:
            append_line(path, line)
        return
    mode = "a" if os.path.exists(path) else "w"  # check ...
    with open(path, mode) as f:  # ... then act on a stale check
        f.write(line + "\n")


def run_writers(lock: threading.Lock | None) -> list[str]:
    path = os.path.join(tempfile.gettempdir(), f"plait-file-writer-{os.getpid()}.txt")
    if os.path.exists(path):
        os.remove(path)
    writers = [threading.Thread(target=append_line, args=(path, f"line {n}", lock))
               for n in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    with open(path) as f:
        lines = f.read().splitlines()
    os.remove(path)
    return lines


@plait.explore()
def test_file_writers() -> None:
    assert sorted(run_writers(None)) == ["line 1", "line 2"]


@plait.explore()
def test_file_writers_locked() -> None:
    assert sorted(run_writers(threading.Lock())) == ["line 1", "line 2"]
