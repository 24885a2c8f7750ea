"""The lost update: two tasks read a value, both write it back incremented, one write is lost.

`test_two_increments` fails under plait (found in a handful of executions); the locked
twin `test_two_increments_locked` passes, and plait says it exhausted every interleaving.
"""

import asyncio
import random

import plait

db: dict[str, int] = {}


async def get_value(key: str) -> int:
    await asyncio.sleep(random.uniform(0, 0.01))  # simulated I/O: virtual time, costs nothing
    return db[key]


async def set_value(key: str, value: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.01))
    db[key] = value


async def increment(key: str) -> None:
    value = await get_value(key)
    await set_value(key, value + 1)


@plait.explore()
async def test_two_increments() -> None:
    db["k"] = 0
    await asyncio.gather(increment("k"), increment("k"))
    assert db["k"] == 2


lock = asyncio.Lock()


async def locked_increment(key: str, lock: asyncio.Lock) -> None:
    async with lock:
        value = await get_value(key)
        await set_value(key, value + 1)


@plait.explore()
async def test_two_increments_locked() -> None:
    db["k"] = 0
    lock = asyncio.Lock()
    await asyncio.gather(locked_increment("k", lock), locked_increment("k", lock))
    assert db["k"] == 2
