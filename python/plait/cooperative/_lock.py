"""A lock for resources shared by cooperative tests (a database, a patched module).

Take it in a fixture so the tests that use the fixture never overlap::

    db_lock = plait.cooperative.Lock()

    @pytest.fixture
    async def db():
        async with db_lock:
            yield connect()

``async with db_lock():`` works too, as in pytest-asyncio-cooperative.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType


class Lock:
    """An ``asyncio.Lock`` usable from module level, whatever loop runs the tests.

    ``asyncio.Lock`` binds itself to the first loop that uses it; a lock created at
    import time would then fail in the next session (pytester, xdist, reruns). This one
    keeps one ``asyncio.Lock`` per running loop.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def locked(self) -> bool:
        """Whether some task holds the lock on the running loop."""
        return self._lock().locked()

    async def acquire(self) -> bool:
        return await self._lock().acquire()

    def release(self) -> None:
        self._lock().release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __call__(self) -> Lock:
        """``async with lock():`` is the pytest-asyncio-cooperative spelling."""
        return self
