"""The AB/BA deadlock: one thread takes lock A then B, the other B then A.

`test_lock_order` deadlocks under some interleaving and plait reports who holds what and
who waits for what, instead of hanging. `test_same_lock_order` takes them in one order.
"""

import threading

import plait


def take(first: threading.Lock, second: threading.Lock, log: list[str], name: str) -> None:
    with first:
        with second:
            log.append(name)


def run(reverse: bool) -> list[str]:
    lock_a, lock_b = threading.Lock(), threading.Lock()
    log: list[str] = []
    one = threading.Thread(target=take, args=(lock_a, lock_b, log, "one"))
    two = threading.Thread(target=take,
                           args=((lock_b, lock_a) if reverse else (lock_a, lock_b)) + (log, "two"))
    one.start()
    two.start()
    one.join()
    two.join()
    return log


@plait.explore()
def test_lock_order() -> None:
    assert sorted(run(reverse=True)) == ["one", "two"]


@plait.explore()
def test_same_lock_order() -> None:
    assert sorted(run(reverse=False)) == ["one", "two"]
