"""Check-then-act across an await: both withdrawals pass the balance check, then both pay.

The second withdrawal comes 5 ms after the first, and the first one's audit takes 1 ms, so
a normal run always passes. Under load the audit can be slower than that: plait tries the
timers in the other order and the account is overdrawn. The fixed version holds a lock
across the check and the update.
"""

import asyncio

import plait


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance

    async def withdraw(self, amount: int) -> bool:
        if self.balance >= amount:  # check ...
            await self.audit(amount)  # ... an await lets another task run ...
            self.balance -= amount  # ... act on a stale check
            return True
        return False

    async def audit(self, amount: int) -> None:
        await asyncio.sleep(0.001)


class SafeAccount(Account):
    def __init__(self, balance: int) -> None:
        super().__init__(balance)
        self.lock = asyncio.Lock()

    async def withdraw(self, amount: int) -> bool:
        async with self.lock:
            return await super().withdraw(amount)


async def later(delay: float, amount: int, account: Account) -> bool:
    await asyncio.sleep(delay)  # a second click, 5 ms later
    return await account.withdraw(amount)


@plait.explore()
async def test_withdrawals() -> None:
    account = Account(100)
    await asyncio.gather(account.withdraw(80), later(0.005, 50, account))
    assert account.balance >= 0, f"overdrawn: {account.balance}"


@plait.explore()
async def test_withdrawals_locked() -> None:
    account = SafeAccount(100)
    await asyncio.gather(account.withdraw(80), later(0.005, 50, account))
    assert account.balance >= 0, f"overdrawn: {account.balance}"
