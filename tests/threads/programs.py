"""Threaded programs explored by the tests (a real module: plait traces code from files)."""

from __future__ import annotations

import _thread
import queue
import threading
import time
from collections.abc import Callable


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        v = self.value
        self.value = v + 1


def counter_body(n: int, *, locked: bool = False, check: bool = True) -> Callable[[], None]:
    def body() -> None:
        counter = Counter()
        lock = threading.Lock()

        def work() -> None:
            if locked:
                with lock:
                    counter.increment()
            else:
                counter.increment()

        threads = [threading.Thread(target=counter.increment if not locked else work)
                   for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if check:
            assert counter.value == n

    return body


def take(first: threading.Lock, second: threading.Lock) -> None:
    with first:
        with second:
            pass


def deadlock_body() -> None:
    lock_a, lock_b = threading.Lock(), threading.Lock()
    one = threading.Thread(target=take, args=(lock_a, lock_b))
    two = threading.Thread(target=take, args=(lock_b, lock_a))
    one.start()
    two.start()
    one.join()
    two.join()


HELD = _thread.allocate_lock()  # a real lock, taken at import: plait cannot see it
HELD.acquire()


def stuck_body() -> None:
    worker = threading.Thread(target=lambda: HELD.acquire(True, 20))  # blocks for real
    worker.start()
    worker.join()


def producer_consumer() -> None:
    jobs: queue.Queue[int | None] = queue.Queue(maxsize=1)
    done = threading.Event()
    results: list[int] = []
    ready = threading.Condition()
    gate = threading.Semaphore(1)
    barrier = threading.Barrier(2)
    simple: queue.SimpleQueue[int] = queue.SimpleQueue()
    rlock = threading.RLock()

    def producer() -> None:
        barrier.wait()
        for i in range(2):
            jobs.put(i)
        jobs.put(None)
        time.sleep(100)  # virtual: costs nothing
        simple.put(7)

    def consumer() -> None:
        barrier.wait()
        while (item := jobs.get()) is not None:
            with gate, rlock, rlock:
                results.append(item)
        with ready:
            ready.notify_all()
        results.append(simple.get(timeout=1000))
        done.set()

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for thread in threads:
        thread.start()
    assert done.wait(timeout=10_000)
    for thread in threads:
        thread.join()
    assert results == [0, 1, 7]


def bank(*, locked: bool) -> Callable[[], None]:
    class Account:
        def __init__(self, balance: int) -> None:
            self.balance = balance

    def body() -> None:
        a, b = Account(100), Account(100)
        lock = threading.Lock()

        def move(src: Account, dst: Account, amount: int) -> None:
            if locked:
                lock.acquire()
            src.balance -= amount
            dst.balance += amount
            if locked:
                lock.release()

        threads = [threading.Thread(target=move, args=(a, b, 30)),
                   threading.Thread(target=move, args=(b, a, 20))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert a.balance + b.balance == 200

    return body


# -- synchronization objects made at import, before any exploration (Part 1 of issue 10) --
LOCK = threading.Lock()
RLOCK = threading.RLock()
READY = threading.Condition()
GATE = threading.Semaphore(1)
DONE = threading.Event()
MEET = threading.Barrier(2)
JOBS: queue.Queue[int] = queue.Queue()
shared = {"n": 0}


def _bump() -> None:
    with LOCK:
        value = shared["n"]
        shared["n"] = value + 1


def module_lock_counter() -> None:
    shared["n"] = 0
    threads = [threading.Thread(target=_bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared["n"] == 2


def module_primitives() -> None:
    """Every kind of pre-existing object, used by two threads: correct, so it must pass."""
    DONE.clear()
    # attributes, not containers: tracing keys every container's items alike, and takes a
    # `.get()` for a container read (on 3.12+ JOBS.get() looked like a race with a dict write)
    got, tally = Counter(), Counter()

    def producer() -> None:
        with RLOCK, RLOCK:
            tally.value += 1
        with GATE:
            tally.value += 1
        JOBS.put(7)
        with READY:
            DONE.set()
            READY.notify_all()
        MEET.wait()

    def consumer() -> None:
        got.value = JOBS.get()
        with READY:
            READY.wait_for(DONE.is_set)
        DONE.wait()
        MEET.wait()

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got.value == 7 and tally.value == 2


FIRST = threading.Lock()
SECOND = threading.Lock()


def module_lock_deadlock() -> None:
    one = threading.Thread(target=take, args=(FIRST, SECOND))
    two = threading.Thread(target=take, args=(SECOND, FIRST))
    one.start()
    two.start()
    one.join()
    two.join()


def module_lock_unlocked_counter() -> None:
    """A lost update next to a module-level lock that does not cover the read."""
    shared["n"] = 0

    def bump() -> None:
        value = shared["n"]
        with LOCK:
            shared["n"] = value + 1

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared["n"] == 2
