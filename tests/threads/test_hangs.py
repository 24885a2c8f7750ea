"""Nothing hangs (issue 10, part 2): a thread blocked in something plait does not control
is reported as a ``Hang`` failure, the session goes on with the next test, and pytest
exits by itself with the stuck threads abandoned. Run in a child pytest so that "exits by
itself" is checked, not assumed."""

from __future__ import annotations

import pytest

HANGING = '''
import _thread, socket, subprocess, sys, threading
from time import sleep as real_sleep  # bound before plait patches time.sleep: a real sleep
import plait
from plait.threads import locks

REAL = _thread.allocate_lock()  # made as if before plait was imported: a real lock
locks.uninstall_types()
OUTSIDE = threading.Condition()  # a Condition made before plait was imported
locks.install_types()
HELD = threading.Lock()  # a module-level lock: controlled


@plait.explore(hang_timeout=0.5)
def test_real_lock_its_own_test_holds():
    REAL.acquire()
    try:
        worker = threading.Thread(target=REAL.acquire)
        worker.start()
        worker.join()
    finally:
        REAL.release()


@plait.explore(hang_timeout=0.5)
def test_module_lock_its_own_test_holds():
    with HELD:
        worker = threading.Thread(target=HELD.acquire)
        worker.start()
        worker.join()


@plait.explore(hang_timeout=0.5)
def test_event_made_outside():
    event = threading.Event()
    event._cond = OUTSIDE
    waiter = threading.Thread(target=event.wait)
    waiter.start()
    waiter.join()


@plait.explore(hang_timeout=0.5)
def test_long_real_sleep():
    real_sleep(3600)


@plait.explore(hang_timeout=0.5)
def test_long_real_sleep_in_a_thread():
    worker = threading.Thread(target=real_sleep, args=(3600,), daemon=False)
    worker.start()
    worker.join()


@plait.explore(hang_timeout=0.5)
def test_blocking_socket_read():
    reader, writer = socket.socketpair()
    worker = threading.Thread(target=reader.recv, args=(1,))
    worker.start()
    worker.join()


@plait.explore(hang_timeout=0.5)
def test_subprocess_wait():
    subprocess.run([sys.executable, "-c", "import time; time.sleep(3600)"])


def test_the_session_goes_on():
    pass
'''


def test_every_way_of_getting_stuck_fails_and_the_session_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hanging=HANGING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           timeout=240)
    result.assert_outcomes(failed=7, passed=1)
    text = result.stdout.str()
    for name in ("real_lock_its_own_test_holds", "event_made_outside", "long_real_sleep",
                 "long_real_sleep_in_a_thread", "blocking_socket_read", "subprocess_wait"):
        assert f"FAILED test_hanging.py::test_{name} - " in text
    assert text.count("did not reach a scheduling point within 0.5s") >= 6
    assert "Hang: MainThread did not reach a scheduling point within 0.5s" in text  # the body itself
    assert "in test_subprocess_wait" in text and "in test_blocking_socket_read" in text
    # a lock made at import is plait's: held by the test and wanted by its thread, that is a
    # deadlock plait sees and names, not a hang
    assert "every thread is blocked and none can run (a deadlock)" in text
