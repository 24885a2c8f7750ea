"""Bank transfers must conserve the total. `balance -= amount` is a read then a write, so two
transfers touching the same account can lose one of the updates.

`test_transfers_conserve_money` finds an interleaving where money appears or vanishes; the
locked version takes both accounts' locks (in a fixed order) and passes exhaustively.
"""

import threading

import plait


class Account:
    def __init__(self, name: str, balance: int) -> None:
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()


def transfer(source: Account, target: Account, amount: int) -> None:
    if source.balance >= amount:
        source.balance -= amount
        target.balance += amount


def locked_transfer(source: Account, target: Account, amount: int) -> None:
    first, second = sorted((source, target), key=lambda account: account.name)
    with first.lock, second.lock:
        transfer(source, target, amount)


def run(move) -> int:  # type: ignore[no-untyped-def]
    alice, bob = Account("alice", 100), Account("bob", 100)
    threads = [threading.Thread(target=move, args=(alice, bob, 30)),
               threading.Thread(target=move, args=(bob, alice, 20))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return alice.balance + bob.balance


@plait.explore()
def test_transfers_conserve_money() -> None:
    assert run(transfer) == 200


@plait.explore()
def test_locked_transfers_conserve_money() -> None:
    assert run(locked_transfer) == 200
