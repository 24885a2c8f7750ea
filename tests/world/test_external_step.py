"""The external step: state outside the interpreter, described by effects on stable keys,
explored in threads and in asyncio tasks like any other shared state."""

from __future__ import annotations

import asyncio
import operator
import os
import pathlib
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure
from plait.world import OUTSIDE, Effect, block, external_step, key_hash, wake


def traces(result: plait.ExplorationResult) -> int:
    """The distinct executions of an exhausted dpor run. On 3.11 there are no redundant ones
    here; under 3.12+'s sys.monitoring the thread tracer's footprints still cost dpor a few
    sleep-set-blocked executions (issue 11 part 2), though every trace is run once."""
    assert result.exhausted
    if sys.version_info < (3, 12):
        assert result.redundant == 0, result.summary()
    return result.distinct

# A store tracing cannot see: operator's C functions touch it, no attribute or subscript
# in the user's code does. It stands for a database or a file: only external steps tell
# plait what happens to it.
STORE: dict[str, int] = {}


def get(key: str) -> int:
    external_step(f"GET {key}", [Effect(("store", key), False, f"store[{key!r}]")])
    return operator.getitem(STORE, key)  # type: ignore[no-any-return]


def put(key: str, value: int) -> None:
    external_step(f"PUT {key} {value}", [Effect(("store", key), True, f"store[{key!r}]")])
    operator.setitem(STORE, key, value)


def threads(*targets: Callable[[], None]) -> None:
    workers = [threading.Thread(target=t) for t in targets]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def increment(key: str) -> Callable[[], None]:
    def run() -> None:
        put(key, get(key) + 1)
    return run


def test_lost_update_through_external_steps_in_threads_is_found_and_reported() -> None:
    def body() -> None:
        operator.setitem(STORE, "n", 0)
        threads(increment("n"), increment("n"))
        assert operator.getitem(STORE, "n") == 2

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(body).explore()
    report = caught.value.report
    assert "Thread-1 (run): GET n at tests/world/test_external_step.py" in report
    assert "PUT n 1" in report
    assert "| external_step(f\"GET {key}\"" in report  # the user's line that made the call
    assert "store['n']: " in report and "'s update was lost." in report


def test_each_order_of_the_conflicting_external_steps_is_explored() -> None:
    def body() -> None:
        operator.setitem(STORE, "n", 0)
        threads(increment("n"), increment("n"))

    result = plait.explore(strategy="dpor", stop_on_first=False, races="ignore")(
        body).explore()
    assert result.exhausted and result.distinct == 4  # the two-counter's 4 traces


def test_disjoint_keys_explore_one_execution() -> None:
    def body() -> None:
        for key in "abc":
            operator.setitem(STORE, key, 0)
        threads(increment("a"), increment("b"), increment("c"))
        assert [operator.getitem(STORE, k) for k in "abc"] == [1, 1, 1]

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert traces(result) == 1


def test_readers_only_explore_one_execution() -> None:
    def body() -> None:
        operator.setitem(STORE, "r", 7)
        threads(*(lambda: get("r") for _ in range(3)))

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert traces(result) == 1


def test_outside_key_conflicts_with_every_external_effect() -> None:
    def body() -> None:
        operator.setitem(STORE, "x", 0)
        threads(lambda: get("x"),
                lambda: external_step("something outside", [Effect(OUTSIDE, True)]))

    result = plait.explore(strategy="dpor", stop_on_first=False, races="ignore")(body).explore()
    assert traces(result) == 2


def test_lost_update_in_asyncio_tasks_joins_the_task_step() -> None:
    async def bump(key: str) -> None:
        value = get(key)  # a synchronous call inside the task's step
        await asyncio.sleep(0)
        put(key, value + 1)

    async def body() -> None:
        operator.setitem(STORE, "t", 0)
        await asyncio.gather(bump("t"), bump("t"))
        assert operator.getitem(STORE, "t") == 2

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(body).explore()
    report = caught.value.report
    assert "(GET t at tests/world/test_external_step.py:" in report
    assert "store['t']: " in report and "'s update was lost." in report

    async def unchecked() -> None:
        operator.setitem(STORE, "t", 0)
        await asyncio.gather(bump("t"), bump("t"))

    result = plait.explore(strategy="dpor", stop_on_first=False, races="ignore")(
        unchecked).explore()
    assert result.exhausted and result.executions == 4 and result.redundant == 0


def test_disjoint_keys_in_tasks_explore_one_execution() -> None:
    async def bump(key: str) -> None:
        value = get(key)
        await asyncio.sleep(0)
        put(key, value + 1)

    async def body() -> None:
        for key in ("u", "v"):
            operator.setitem(STORE, key, 0)
        await asyncio.gather(bump("u"), bump("v"))

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.executions == 1


def test_external_step_outside_an_exploration_does_nothing() -> None:
    external_step("nothing runs", [Effect(("store", "z"), True)])
    assert block("nobody", "waits") is True
    wake("nobody")


def test_keys_hash_the_same_in_every_process() -> None:
    keys = [("file", "/tmp/x"), ("sql", "db", "seats", 3), ("sql", "db", "seats", None),
            OUTSIDE, ("k", b"\x00", 1.5, True, ("nested", -2))]
    script = ("from plait.world import key_hash; "
              f"print([key_hash(k) for k in {keys!r}])")
    outputs = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{[key_hash(k) for k in keys]}\n"}
    assert len({key_hash(k) for k in keys}) == len(keys)
    assert key_hash(("k", 1)) != key_hash(("k", "1")) != key_hash(("k", True))


def test_a_key_that_is_not_canonical_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="of type object; keys are tuples of str"):
        key_hash(("row", object()))
    with pytest.raises(TypeError, match="must be a non-empty tuple"):
        key_hash("file")  # type: ignore[arg-type]


def test_blocked_outside_until_woken_and_deadlock_when_nobody_wakes() -> None:
    def handoff() -> None:
        box: list[str] = []

        def waiter() -> None:
            while not operator.contains(box, "ready"):
                block("the row lock", "waits for the row lock")

        def holder() -> None:
            operator.iadd(box, ["ready"])
            wake("the row lock")

        threads(waiter, holder)

    result = plait.explore(strategy="dfs", stop_on_first=False, races="ignore")(
        handoff).explore()
    assert result.exhausted and result.failure is None

    def stuck() -> None:
        threads(lambda: block("the row lock", "waits for the row lock"))

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dfs")(stuck).explore()
    assert isinstance(caught.value.__cause__, Deadlock)
    assert "waits for the row lock" in caught.value.report


def test_interception_held_for_the_exploration_and_undone_after_it(
        tmp_path: os.PathLike[str]) -> None:
    """The wrappers stay installed from the first execution to the end of the exploration
    (not re-installed per execution) and the originals are back once it ends."""
    import builtins
    import os as os_module

    original_open, original_exists = builtins.open, os_module.path.exists
    seen: list[bool] = []
    target = os.path.join(tmp_path, "f")

    @plait.explore(strategy="dfs", max_executions=3, races="ignore")
    def body() -> None:
        seen.append(builtins.open is not original_open)
        with open(target, "w") as handle:
            handle.write("x")

    body()
    assert seen and all(seen)
    assert builtins.open is original_open and os_module.path.exists is original_exists


def test_an_external_call_is_one_step_its_own_io_is_not(tmp_path: pathlib.Path) -> None:
    from plait.world import external_call

    path = str(tmp_path / "f")

    def driver() -> None:  # a driver doing its own I/O while it runs one statement
        with external_call("QUERY k", [Effect(("store", "k"), True, "store['k']")]):
            os.path.exists(path)
            subprocess.run(["true"], check=True)

    def checker() -> None:
        os.path.exists(path)

    options = {"strategy": "dpor", "stop_on_first": False, "races": "ignore"}
    assert traces(plait.explore(**options)(lambda: threads(driver, checker)).explore()) == 1

    def unwrapped() -> None:
        os.path.exists(path)
        subprocess.run(["true"], check=True)

    assert plait.explore(**options)(lambda: threads(unwrapped, checker)).explore().distinct == 2

    def failing() -> None:
        with external_call("QUERY k", [Effect(("store", "k"), True, "store['k']")]):
            pass
        raise AssertionError("after the call")

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(failing).explore()
    assert "QUERY k at tests/world/test_external_step.py:" in caught.value.report
