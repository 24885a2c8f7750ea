"""call_concurrently and make_concurrent_calls, the same checks on both backends."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import conc_targets as t
import pytest

import plait
from plait.concurrent import (
    CallResults,
    CallTimedOut,
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    call_concurrently,
    make_concurrent_calls,
)

BACKENDS = ["threads", "processes"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_lazily_exported_from_plait() -> None:
    assert plait.call_concurrently is call_concurrently
    assert plait.make_concurrent_calls is make_concurrent_calls


def test_same_call_n_times_with_positional_and_keyword_arguments(backend: str) -> None:
    results = call_concurrently(5, t.add, 1, 2, z=3, backend=backend)
    assert isinstance(results, CallResults)
    assert [r.value for r in results] == [6] * 5
    assert all(r.ok and r.exception is None for r in results)
    assert [r.index for r in results] == list(range(5))


def test_different_calls_come_back_in_call_order(backend: str) -> None:
    results = make_concurrent_calls(
        (t.sleep_then, (0.2, "slow"), {}),  # finishes last, still first in the list
        (t.add, (1,), {"y": 1}),
        (t.add, {"x": 5}),
        (t.add, (7,)),
        ("conc_targets:add", (1, 1), {"z": 1}),
        t.pid,
        backend=backend,
    )
    assert [r.value for r in results[:5]] == ["slow", 2, 5, 7, 3]
    assert isinstance(results[5].value, int)


def test_calls_overlap_and_start_together(backend: str) -> None:
    before = time.time()
    results = call_concurrently(4, t.interval, 0.6, backend=backend)
    after = time.time()
    starts = [r.value[0] for r in results]
    ends = [r.value[1] for r in results]
    assert max(starts) < min(ends), "every call must still be running when the last one starts"
    assert all(before <= r.started_at <= r.finished_at <= after for r in results)
    assert results.start_spread == max(r.started_at for r in results) - min(
        r.started_at for r in results
    )
    assert results.start_spread < 0.5  # loose: sequential calls would be 0.6 s apart


def test_threads_really_run_at_the_same_time() -> None:
    barrier = threading.Barrier(4)  # passes only if 4 calls are inside at once
    results = call_concurrently(4, barrier.wait, 5, backend="threads")
    assert sorted(r.value for r in results) == [0, 1, 2, 3]


def test_exception_is_a_result_with_traceback_and_reraise(backend: str) -> None:
    results = make_concurrent_calls((t.fail, ("no seat",)), (t.add, (1,)), backend=backend)
    failed, passed = results
    assert not failed.ok and failed.status == "raised" and failed.value is None
    assert isinstance(failed.exception, ValueError) and str(failed.exception) == "no seat"
    assert "in fail" in failed.traceback and "ValueError: no seat" in failed.traceback
    assert failed.started_at is not None
    assert passed.ok and passed.unwrap() == 1
    with pytest.raises(ValueError, match="no seat") as info:
        failed.reraise()
    if backend == "processes":
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "in fail" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="no seat"):
        failed.unwrap()
    with pytest.raises(ValueError, match="nothing to re-raise"):
        passed.reraise()


def test_raise_exceptions_gives_an_exception_group(backend: str) -> None:
    with pytest.raises(ExceptionGroup) as info:
        make_concurrent_calls(
            (t.fail, ("a",)),
            (t.add, (1,)),
            (t.fail, ("b",)),
            backend=backend,
            raise_exceptions=True,
        )
    group = info.value
    assert str(group).startswith("2 of 3 concurrent calls failed")
    assert [str(e) for e in group.exceptions] == ["a", "b"]
    assert any("call #2" in note for note in group.exceptions[1].__notes__)


def test_arguments_and_results_of_any_size(backend: str) -> None:
    big = os.urandom(8 * 1024 * 1024)
    results = call_concurrently(2, t.identity, big, backend=backend)
    assert all(r.value == big for r in results)


def test_function_given_as_a_string(backend: str) -> None:
    results = call_concurrently(2, "conc_targets:add", 2, y=2, backend=backend)
    assert [r.value for r in results] == [4, 4]


def test_bad_function_path_is_reported() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        call_concurrently(2, "conc_targets.add")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        call_concurrently(2, "conc_targets:nope")


def test_timeout_stops_the_call_and_reports_it(backend: str) -> None:
    target = t.spin if backend == "threads" else t.sleep_then
    args = (30,) if backend == "threads" else (30, "late")
    results = make_concurrent_calls((target, args), (t.add, (1,)), backend=backend, timeout=1)
    slow, quick = results
    assert slow.timed_out and not slow.ok and isinstance(slow.exception, CallTimedOut)
    assert "did not finish within 1 s" in str(slow.exception)
    with pytest.raises(CallTimedOut):
        slow.reraise()
    assert quick.ok and quick.value == 1
    # the pool (or the thread) recovered: the next batch runs normally
    assert [r.value for r in call_concurrently(2, t.add, 2, backend=backend)] == [2, 2]


def test_validation_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        call_concurrently(2, t.add, 1, backend="fork")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be a positive int"):
        call_concurrently(0, t.add, 1)
    with pytest.raises(ValueError, match="timeout must be"):
        call_concurrently(1, t.add, 1, timeout=0)
    with pytest.raises(TypeError, match=r"calls\[1\] must be"):
        make_concurrent_calls((t.add, (1,)), 42)


# --- processes only -----------------------------------------------------------------------


def test_a_worker_that_dies_is_reported_and_replaced() -> None:
    results = make_concurrent_calls((t.die, (3,)), t.kill_self, t.pid, backend="processes")
    exited, killed, alive = results
    assert exited.worker_died and isinstance(exited.exception, WorkerDied)
    assert "exited with code 3" in str(exited.exception)
    assert killed.worker_died and "killed by SIGKILL" in str(killed.exception)
    assert alive.ok
    pids = [r.value for r in call_concurrently(3, t.pid, backend="processes", timeout=30)]
    assert len(set(pids)) == 3 and all(isinstance(p, int) for p in pids)


def test_worker_pool_is_warm_and_reused() -> None:
    first = {r.value for r in call_concurrently(3, t.pid, backend="processes")}
    second = {r.value for r in call_concurrently(3, t.pid, backend="processes")}
    assert first == second and os.getpid() not in first


def test_workers_are_fresh_interpreters_not_forks() -> None:
    assert "pytest" in sys.modules
    assert all(r.value for r in call_concurrently(2, t.fresh_interpreter, backend="processes"))


def test_workers_see_cwd_sys_path_and_environment(tmp_path, monkeypatch) -> None:
    (tmp_path / "plait_only_here.py").write_text("VALUE = 'found'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAIT_TEST_VAR", "set by the test")
    results = make_concurrent_calls(
        (t.environment, ("PLAIT_TEST_VAR",)),
        (t.import_and_call, ("plait_only_here",)),
        backend="processes",
    )
    cwd, value, path = results[0].unwrap()
    assert cwd == str(tmp_path) and value == "set by the test" and str(tmp_path) in path
    assert results[1].unwrap() == "found"


def test_lambdas_need_threads() -> None:
    assert call_concurrently(2, lambda: 7, backend="threads")[0].value == 7
    with pytest.raises(TypeError, match="use backend='threads' for lambdas"):
        call_concurrently(2, lambda: 7, backend="processes")
    with pytest.raises(TypeError, match="cannot be pickled"):
        call_concurrently(2, t.identity, threading.Lock(), backend="processes")


def test_unpicklable_results_and_exceptions_are_still_reported() -> None:
    lock, exc = make_concurrent_calls(t.return_lock, t.fail_unpicklable, backend="processes")
    assert not lock.ok and isinstance(lock.exception, TypeError)
    assert "cannot be pickled" in str(lock.exception)
    assert isinstance(exc.exception, RemoteError)
    assert exc.exception.type_name == "conc_targets.Unpicklable"
    assert "1/2" in str(exc.exception) and "fail_unpicklable" in exc.traceback


def test_a_worker_killed_between_batches_is_replaced() -> None:
    import signal

    pids = [r.value for r in call_concurrently(2, t.pid, backend="processes")]
    os.kill(pids[0], signal.SIGKILL)
    status = Path(f"/proc/{pids[0]}/status")
    deadline = time.monotonic() + 5
    while status.exists() and "zombie" not in status.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    results = call_concurrently(2, t.pid, backend="processes")
    assert all(r.ok for r in results) and pids[0] not in {r.value for r in results}


def test_workers_survive_their_working_directory_being_removed(tmp_path, monkeypatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    assert all(r.ok for r in call_concurrently(2, t.pid, backend="processes"))
    monkeypatch.chdir(tmp_path)
    gone.rmdir()
    results = call_concurrently(2, t.environment, "HOME", backend="processes")
    assert [r.unwrap()[0] for r in results] == [str(tmp_path)] * 2
