"""The file system, sockets and subprocesses with no annotation: calls from the user's code
are external steps keyed by path (or by the conservative OUTSIDE key)."""

from __future__ import annotations

import asyncio
import builtins
import io
import linecache
import os
import pathlib
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import plait
from plait.errors import InterleavingFailure
from plait.world.files import show


def traces(result: plait.ExplorationResult) -> int:
    """The distinct executions of an exhausted dpor run. On 3.11 there are no redundant ones
    here; under 3.12+'s sys.monitoring the thread tracer's footprints still cost dpor a few
    sleep-set-blocked executions (issue 11 part 2), though every trace is run once."""
    assert result.exhausted
    if sys.version_info < (3, 12):
        assert result.redundant == 0, result.summary()
    return result.distinct

def append_line(path: str, line: str) -> None:
    mode = "a" if os.path.exists(path) else "w"
    with open(path, mode) as f:
        f.write(line + "\n")


def run_threads(*targets: Callable[[], object]) -> None:
    workers = [threading.Thread(target=t) for t in targets]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def lines_of(path: str) -> list[str]:
    """The file's lines, and the file removed: the next execution starts without it."""
    with open(path) as f:
        lines = sorted(f.read().splitlines())
    os.remove(path)
    return lines


def writers_body(path: str, lock: threading.Lock | None = None) -> Callable[[], None]:
    def write(n: int) -> None:
        if lock is None:
            append_line(path, f"line {n}")
        else:
            with lock:
                append_line(path, f"line {n}")

    def body() -> None:
        run_threads(lambda: write(1), lambda: write(2))
        assert lines_of(path) == ["line 1", "line 2"]

    return body


def explore(body: Callable[[], object], **options: object) -> plait.ExplorationResult:
    return plait.explore(**options)(body).explore()  # type: ignore[arg-type]


def test_two_file_writers_race_in_threads_is_found_with_the_calls_in_the_report(
        tmp_path: Path) -> None:
    with pytest.raises(InterleavingFailure) as caught:
        explore(writers_body(str(tmp_path / "log")))
    report = caught.value.report
    path = show(str(tmp_path / "log"))
    assert f"os.path.exists({path}) at tests/world/test_files.py:" in report
    assert f"open({path}, 'w') at tests/world/test_files.py:" in report
    assert f"write('line 1\\n') to {path}" in report or f"write('line 2\\n') to {path}" in report
    assert "| mode = \"a\" if os.path.exists(path) else \"w\"" in report
    assert f"  {tmp_path / 'log'}: " in report  # the file is the conflicting location


def test_two_file_writers_under_a_lock_are_exhausted(tmp_path: Path) -> None:
    def body() -> None:
        writers_body(str(tmp_path / "log"), threading.Lock())()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the lock orders every access: no RaceWarning
        result = explore(body, stop_on_first=False)
    assert result.exhausted and result.failure is None and result.executions > 1


def test_the_example_finds_its_race_without_a_manual_point() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    import file_writer

    source = Path(file_writer.__file__).read_text()
    assert "plait.point()" not in source
    with pytest.raises(InterleavingFailure):
        file_writer.test_file_writers.explore()
    assert file_writer.test_file_writers_locked.explore().exhausted


def test_two_file_writers_race_in_asyncio_tasks_with_plain_calls(tmp_path: Path) -> None:
    path = str(tmp_path / "log")

    async def write(n: int, lock: asyncio.Lock | None) -> None:
        if lock is not None:
            await lock.acquire()
        mode = "a" if os.path.exists(path) else "w"  # a synchronous call in the task's step
        await asyncio.sleep(0)
        with open(path, mode) as f:
            f.write(f"line {n}\n")
        if lock is not None:
            lock.release()

    def body(locked: bool) -> Callable[[], object]:
        async def run() -> None:
            lock = asyncio.Lock() if locked else None
            await asyncio.gather(write(1, lock), write(2, lock))
            assert lines_of(path) == ["line 1", "line 2"]
        return run

    with pytest.raises(InterleavingFailure) as caught:
        explore(body(False), strategy="dpor")
    assert f"(os.path.exists({show(path)}) at tests/world/test_files.py:" in caught.value.report
    assert f"(open({show(path)}, 'w') at tests/world/test_files.py:" in caught.value.report
    result = explore(body(True), strategy="dpor", stop_on_first=False)
    assert result.exhausted and result.failure is None


def test_two_file_writers_race_through_asyncio_to_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "log")

    async def write(n: int) -> None:
        exists = await asyncio.to_thread(os.path.exists, path)
        f = await asyncio.to_thread(open, path, "a" if exists else "w")
        await asyncio.to_thread(f.write, f"line {n}\n")
        await asyncio.to_thread(f.close)

    async def body() -> None:
        await asyncio.gather(write(1), write(2))
        assert lines_of(path) == ["line 1", "line 2"]

    with pytest.raises(InterleavingFailure) as caught:
        explore(body)
    assert f"(partial): os.path.exists({show(path)})" in caught.value.report  # a worker thread


def test_writers_of_disjoint_paths_explore_one_execution(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"log{n}") for n in range(3)]

    def body() -> None:
        run_threads(*(lambda p=p: append_line(p, "only") for p in paths))
        assert [lines_of(p) for p in paths] == [["only"]] * 3

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RaceWarning either
        result = explore(body, strategy="dpor", stop_on_first=False)
    assert traces(result) == 1


def test_readers_only_explore_one_execution(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("a\nb\n")

    def read() -> None:
        if os.path.isfile(str(path)) and os.path.getsize(path) > 0 and path.exists():
            with open(path) as f:
                assert [line for line in f] == ["a\n", "b\n"]
            assert path.read_text() == "a\nb\n"
            os.stat(path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = explore(lambda: run_threads(read, read, read), strategy="dpor",
                         stop_on_first=False)
    assert traces(result) == 1


def test_a_listing_conflicts_with_a_creation_in_that_directory(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (tmp_path / "e").mkdir()
    seen: list[int] = []

    def body(create: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            run_threads(lambda: seen.append(len(os.listdir(folder))), create)
            for entry in folder.iterdir():  # the next execution starts from an empty folder
                entry.rmdir() if entry.is_dir() else entry.unlink()
            for entry in (tmp_path / "e").iterdir():
                entry.unlink()
        return run

    options = {"strategy": "dpor", "stop_on_first": False, "races": "ignore"}
    seen.clear()
    assert explore(body(lambda: open(folder / "new", "w").close()), **options).distinct == 2
    assert sorted(set(seen)) == [0, 1]  # both orders were run
    assert explore(body(lambda: (folder / "new").touch()), **options).distinct == 2
    assert explore(body(lambda: os.mkdir(folder / "sub")), **options).distinct == 2
    # a creation elsewhere does not
    assert explore(body(lambda: open(tmp_path / "e" / "new", "w").close()),
                   **options).distinct == 1


def test_pathlib_writers_race_is_found(tmp_path: Path) -> None:
    path = tmp_path / "log"

    def write(n: int) -> None:
        old = path.read_text() if path.exists() else ""
        path.write_text(old + f"line {n}\n")

    def body() -> None:
        run_threads(lambda: write(1), lambda: write(2))
        lines = sorted(path.read_text().splitlines())
        path.unlink()
        assert lines == ["line 1", "line 2"]

    with pytest.raises(InterleavingFailure) as caught:
        explore(body)
    assert f"Path({show(path)}).exists() at tests/world/test_files.py:" in caught.value.report
    assert f"Path({show(path)}).write_text(" in caught.value.report


def test_subprocess_and_sockets_take_the_conservative_outside_key(tmp_path: Path) -> None:
    path = str(tmp_path / "f")
    options = {"strategy": "dpor", "stop_on_first": False, "races": "ignore"}

    def check() -> None:
        os.path.exists(path)

    def run() -> None:
        subprocess.run(["true"], check=True)

    assert explore(lambda: run_threads(run, check), **options).distinct == 2
    assert explore(lambda: run_threads(run, run), **options).distinct == 2

    def sockets() -> None:
        a, b = socket.socketpair()
        try:
            run_threads(lambda: a.sendall(b"x"), check)
            assert b.recv(1) == b"x"
        finally:
            a.close()
            b.close()

    assert explore(sockets, **options).distinct == 2
    assert traces(explore(lambda: run_threads(check, check), **options)) == 1


def test_standard_library_internals_are_not_steps(tmp_path: Path) -> None:
    path = str(tmp_path / "f")

    def internals() -> None:
        linecache.checkcache(__file__)
        linecache.getline(__file__, 1)
        pathlib.Path(path).resolve()
        import json.tool  # noqa: F401 (an import stats the file system)

    def check() -> None:
        os.path.exists(path)

    def writer() -> None:
        with open(path, "w"):
            pass

    options = {"strategy": "dpor", "stop_on_first": False, "races": "ignore"}
    assert traces(explore(lambda: run_threads(internals, writer), **options)) == 1
    # the check before the open, between the open and the close, or after both
    assert traces(explore(lambda: run_threads(check, writer), **options)) == 3


def test_every_original_is_back_after_an_exploration(tmp_path: Path) -> None:
    before = (os.path.exists, os.stat, builtins.open, io.open, os.listdir,
              subprocess.Popen.__init__, "exists" in pathlib.Path.__dict__,
              "connect" in socket.socket.__dict__)
    explore(lambda: run_threads(lambda: append_line(str(tmp_path / "x"), "y")))
    with pytest.raises(InterleavingFailure):  # and after a failing one
        explore(writers_body(str(tmp_path / "log")))
    after = (os.path.exists, os.stat, builtins.open, io.open, os.listdir,
             subprocess.Popen.__init__, "exists" in pathlib.Path.__dict__,
             "connect" in socket.socket.__dict__)
    assert after == before
    assert open.__module__ != "plait.world.intercept"


def test_renames_makedirs_and_thread_targets_are_steps(tmp_path: Path) -> None:
    options = {"strategy": "dpor", "stop_on_first": False, "races": "ignore"}
    target = tmp_path / "target"

    def replace() -> None:
        (tmp_path / "tmp").write_text("new")
        os.replace(tmp_path / "tmp", target)

    def read() -> None:
        with target.open() as f:
            assert f.read() in ("old", "new")

    def body() -> None:
        target.write_text("old")
        run_threads(replace, read)
        target.unlink()

    # the reader opens and reads before, between or after the replacement
    assert explore(body, **options).distinct == 3

    def makedirs(leaf: str) -> Callable[[], None]:
        return lambda: os.makedirs(tmp_path / "a" / leaf, exist_ok=True)

    def dirs() -> None:
        run_threads(makedirs("x"), makedirs("y"))
        for leaf in ("x", "y"):
            (tmp_path / "a" / leaf).rmdir()
        (tmp_path / "a").rmdir()

    assert explore(dirs, **options).distinct == 2  # who creates the shared parent

    def direct() -> None:  # Thread.run calls the os function itself: the user's call
        workers = [threading.Thread(target=os.path.exists, args=(target,)),
                   threading.Thread(target=target.touch)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        target.unlink()

    assert explore(direct, **options).distinct == 2  # the check before or after the touch


def test_unordered_writes_of_one_file_in_a_passing_test_are_a_race_warning(
        tmp_path: Path) -> None:
    path = tmp_path / "log"

    def append(line: str) -> None:
        with open(path, "a") as f:
            f.write(line)

    def body() -> None:
        run_threads(lambda: append("a\n"), lambda: append("b\n"))
        lines = sorted(path.read_text().splitlines())
        path.unlink()
        assert lines == ["a", "b"]

    with pytest.warns(plait.RaceWarning) as caught:
        assert explore(body, strategy="dpor", stop_on_first=False).exhausted
    text = str(caught[0].message)
    assert f"{path}: Thread-" in text and "wrote it at tests/world/test_files.py:" in text
    assert "the listing of" not in text and "outside world" not in text
