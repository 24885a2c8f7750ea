"""plait's loop with every choice at its default behaves exactly like the stdlib loop.

Each program is written once and run on both loops; the observable order of events and the
results must match. Sleeps are real on the stdlib loop and virtual on plait's, so programs
keep their timer deadlines well apart.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import plait.aio

Program = Callable[[list[Any]], Coroutine[Any, Any, Any]]
PROGRAMS: dict[str, Program] = {}


def program(fn: Program) -> Program:
    PROGRAMS[fn.__name__] = fn
    return fn


async def worker(log: list[Any], name: str, steps: int) -> str:
    for i in range(steps):
        log.append((name, i))
        await asyncio.sleep(0)
    return name


@program
async def gather_order(log: list[Any]) -> Any:
    return await asyncio.gather(worker(log, "a", 3), worker(log, "b", 2), worker(log, "c", 4))


@program
async def gather_return_exceptions(log: list[Any]) -> Any:
    async def boom() -> None:
        log.append("boom")
        raise ValueError("x")

    results = await asyncio.gather(worker(log, "a", 2), boom(), return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException) else r for r in results]


@program
async def taskgroup_ok(log: list[Any]) -> Any:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(worker(log, n, 2)) for n in "xyz"]
    return [t.result() for t in tasks]


@program
async def taskgroup_error_cancels_siblings(log: list[Any]) -> Any:
    async def fails() -> None:
        await asyncio.sleep(0)
        log.append("fails")
        raise KeyError("k")

    async def long() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("long cancelled")
            raise

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(long())
            group.create_task(fails())
    except* KeyError as eg:
        log.append(("caught", len(eg.exceptions)))
    return "done"


@program
async def queue_producer_consumer(log: list[Any]) -> Any:
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=2)

    async def producer() -> None:
        for i in range(5):
            await queue.put(i)
            log.append(("put", i))
        await queue.put(None)

    async def consumer() -> list[int]:
        got = []
        while (item := await queue.get()) is not None:
            log.append(("got", item))
            got.append(item)
        return got

    _, got = await asyncio.gather(producer(), consumer())
    return got


@program
async def lock_event_condition_semaphore(log: list[Any]) -> Any:
    lock = asyncio.Lock()
    event = asyncio.Event()
    condition = asyncio.Condition()
    semaphore = asyncio.Semaphore(2)
    ready: list[int] = []

    async def locked(n: int) -> None:
        async with lock:
            log.append(("lock", n))
            await asyncio.sleep(0)
        async with semaphore:
            log.append(("sem", n))
            await asyncio.sleep(0)
        await event.wait()
        log.append(("event", n))
        async with condition:
            await condition.wait_for(lambda: ready)
            log.append(("cond", n))

    async def setter() -> None:
        await asyncio.sleep(0.01)
        event.set()
        await asyncio.sleep(0.01)
        async with condition:
            ready.append(1)
            condition.notify_all()

    await asyncio.gather(*(locked(n) for n in range(3)), setter())
    return "ok"


@program
async def cancellation(log: list[Any]) -> Any:
    async def sleeper() -> None:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            log.append("cancelled inside")
            raise
        finally:
            log.append("finally")

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    task.cancel("stop")
    try:
        await task
    except asyncio.CancelledError as exc:
        log.append(("outer", exc.args))
    return task.cancelled()


@program
async def timeouts(log: list[Any]) -> Any:
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    except TimeoutError:
        log.append("timeout ctx")
    try:
        await asyncio.wait_for(asyncio.sleep(1), 0.01)
    except TimeoutError:
        log.append("wait_for")
    value = await asyncio.wait_for(asyncio.sleep(0.01, result="fast"), 1)
    log.append(value)
    done, pending = await asyncio.wait(
        [asyncio.create_task(asyncio.sleep(0.01, "a")), asyncio.create_task(asyncio.sleep(1, "b"))],
        return_when=asyncio.FIRST_COMPLETED,
    )
    for task in pending:
        task.cancel()
    return sorted(t.result() for t in done)


@program
async def call_soon_and_later_order(log: list[Any]) -> Any:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_later(0.03, log.append, "later 30ms")
    loop.call_later(0.01, log.append, "later 10ms")
    loop.call_soon(log.append, "soon 1")
    loop.call_soon(log.append, "soon 2")
    loop.call_at(loop.time() + 0.02, log.append, "at 20ms")
    handle = loop.call_later(0.015, log.append, "cancelled")
    handle.cancel()
    loop.call_later(0.04, done.set_result, "finished")
    log.append("scheduled")
    return await done


@program
async def exceptions_in_tasks(log: list[Any]) -> Any:
    async def bad(n: int) -> None:
        await asyncio.sleep(0)
        raise RuntimeError(f"bad {n}")

    tasks = [asyncio.create_task(bad(n)) for n in range(2)]
    for task in tasks:
        try:
            await task
        except RuntimeError as exc:
            log.append(str(exc))
    return [type(t.exception()).__name__ for t in tasks]


@program
async def executor_and_to_thread(log: list[Any]) -> Any:
    loop = asyncio.get_running_loop()

    def blocking(x: int) -> tuple[int, bool]:
        return x * 2, threading.current_thread() is threading.main_thread()

    first = await loop.run_in_executor(None, blocking, 4)
    second = await asyncio.to_thread(blocking, 5)
    log.append("executed")
    return [first, second]


@program
async def loopback_socket(log: list[Any]) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readline()
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, family=socket.AF_INET)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        await writer.drain()
        reply = await reader.readline()
        writer.close()
        await writer.wait_closed()
    log.append(reply)
    return reply


def _run_stdlib(prog: Program) -> tuple[list[Any], Any]:
    log: list[Any] = []
    return log, asyncio.run(prog(log))


def _run_plait(prog: Program) -> tuple[list[Any], Any]:
    log: list[Any] = []
    return log, plait.aio.run(lambda: prog(log))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_default_order_matches_stdlib(name: str) -> None:
    prog = PROGRAMS[name]
    assert _run_plait(prog) == _run_stdlib(prog)


def test_virtual_time_costs_no_real_time() -> None:
    import time

    async def long_sleep() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - start

    started = time.monotonic()
    assert plait.aio.run(long_sleep) == pytest.approx(3600)
    assert time.monotonic() - started < 30  # an hour of virtual sleep, no real hour


def test_deadlock_is_reported_not_hung() -> None:
    from plait.errors import Deadlock

    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(Deadlock, match="every task is blocked"):
        plait.aio.run(stuck)


@program
async def loop_settings_changed(log: list[Any]) -> Any:
    # What a test may change on its loop: a reused loop must not carry it to the next run.
    loop = asyncio.get_running_loop()
    log.append((loop.get_exception_handler(), loop.get_task_factory(), loop.get_debug()))
    loop.set_exception_handler(lambda loop, context: log.append("handled"))
    loop.set_task_factory(lambda loop, coro, **kw: asyncio.Task(coro, loop=loop, **kw))
    left = asyncio.create_task(asyncio.sleep(10))  # left pending: cancelled at the end
    await asyncio.sleep(0)
    return left.done()


def test_reused_loop_matches_stdlib() -> None:
    """plait runs the executions of an exploration on one loop, reset in between: every
    program, run one after another on that loop, still behaves like on a new stdlib loop."""
    from plait.aio import DefaultChooser, PlaitLoop
    from plait.runner import run_execution

    loop = PlaitLoop(DefaultChooser())
    reused = 0
    try:
        for name in [n for n in sorted(PROGRAMS) for _ in range(2)]:  # each twice in a row
            prog = PROGRAMS[name]
            log: list[Any] = []
            result: list[Any] = []

            async def body(prog: Program = prog, log: list[Any] = log,
                           result: list[Any] = result) -> None:
                result.append(await prog(log))

            if loop.is_closed():  # the last program left something behind: a new loop
                loop = PlaitLoop(DefaultChooser())
            else:
                reused += 1
            assert run_execution(DefaultChooser(), None, body, 0.1, loop=loop) is None
            assert (log, result[0]) == _run_stdlib(prog), name
    finally:
        if not loop.is_closed():
            loop.close()
    assert reused > len(PROGRAMS)  # most programs leave the loop reusable
