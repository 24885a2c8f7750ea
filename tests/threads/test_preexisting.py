"""Synchronization objects made before the exploration (at import, in fixtures, in
libraries' globals) are scheduled like those made inside it (issue 10, part 1)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure

sys.path.insert(0, str(Path(__file__).resolve().parent))
import programs


def test_module_level_lock_counter_passes_exhausted_without_a_hang() -> None:
    result = plait.explore(hang_timeout=3)(programs.module_lock_counter).explore()
    assert result.failure is None and result.exhausted
    assert "exhausted" in result.summary()


def test_every_kind_of_module_level_object_is_controlled() -> None:
    # 3,600 traces: dpor's 993 executions (345 of them redundant) before lock keys were
    # canonical were missing most of them
    result = plait.explore(hang_timeout=3, max_executions=8000)(programs.module_primitives).explore()
    assert result.failure is None and result.exhausted and result.executions > 1


def test_module_level_locks_deadlock_is_reported_with_their_names() -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(hang_timeout=3)(programs.module_lock_deadlock).explore()
    assert isinstance(caught.value.__cause__, Deadlock)
    assert "(`first` in take())" in caught.value.report


def test_race_beside_a_module_level_lock_is_found() -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(hang_timeout=3)(programs.module_lock_unlocked_counter).explore()
    assert isinstance(caught.value.__cause__, AssertionError)


def test_lock_left_held_by_one_execution_is_free_in_the_next() -> None:
    # a thread that takes the module-level lock and never gives it back
    def body() -> None:
        worker = threading.Thread(target=programs.LOCK.acquire)
        worker.start()
        worker.join()

    result = plait.explore(max_executions=5)(body).explore()
    assert result.failure is None
    assert not programs.LOCK.locked()


def test_fixture_made_objects_are_controlled(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
        import threading, types, pytest

        @pytest.fixture
        def guarded():
            return types.SimpleNamespace(lock=threading.Lock(), n=0)
    ''')
    pytester.makepyfile('''
        import threading, plait

        @plait.explore(hang_timeout=3)
        def test_counter(guarded):
            lock = guarded.lock

            def bump():
                with lock:
                    value = guarded.n
                    guarded.n = value + 1

            guarded.n = 0
            threads = [threading.Thread(target=bump) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert guarded.n == 2
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*plait: test_counter: * exhausted*"])


def test_plain_locks_outside_explorations() -> None:
    lock, rlock = threading.Lock(), threading.RLock()
    assert lock.acquire(False) and not lock.acquire(False) and lock.locked()
    lock.release()
    assert not lock.locked()
    with rlock, rlock:
        assert rlock._is_owned()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        lock.release()
    condition = threading.Condition()
    with condition:
        assert not condition.wait(0.001)
