"""Where the time of one execution goes, asyncio and threads, beside the interpreter's limits.

Each part is measured in this script, on this machine, in this run, by running the same
execution with one more layer of plait each time (a layer's cost is the difference) or by
timing the calls into the engine through a proxy (its own overhead calibrated and taken off).
Figures are µs per execution and per step (a step: what runs between two scheduling points,
the engine's count), medians of repeated runs. Next to them, the interpreter's own limits:

* asyncio task switch: ``await asyncio.sleep(0)`` among 3 tasks on a stdlib loop (per step);
* thread handoff: a ``threading.Condition`` ping-pong between two threads (per handoff);
* one trace event: ``sys.settrace`` with opcode events (3.11), or a ``sys.monitoring``
  INSTRUCTION event (3.12+), calling a Python function that does nothing.

Each of plait's per-step costs is printed as a multiple of the limit it stands against.
Absolute figures move with the machine's load; the multiples much less.

    .venv/bin/python benches/profile_bench.py
"""

from __future__ import annotations

import asyncio
import heapq
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plait
from plait import runner
from plait.aio import DefaultChooser, PlaitLoop
from plait.runner import run_execution
from plait.threads import primitives, run_threaded, scheduler

ASYNC_PROGRAM = '''
import asyncio, random
db = {}
async def get_value(k):
    await asyncio.sleep(random.uniform(0, 0.01))
    return db[k]
async def set_value(k, v):
    await asyncio.sleep(random.uniform(0, 0.01))
    db[k] = v
async def increment(k):
    v = await get_value(k)
    await set_value(k, v + 1)
def make(n):
    async def body():
        db["k"] = 0
        await asyncio.gather(*(increment("k") for _ in range(n)))
    return body
'''

THREAD_PROGRAM = '''
import threading
class Counter:
    def __init__(self): self.value = 0
    def increment(self):
        v = self.value
        self.value = v + 1
def body():
    c = Counter()
    ts = [threading.Thread(target=c.increment) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
'''


def median_us(run: Callable[[], int], repeats: int = 7) -> float:
    """Median over runs of (seconds / units), in µs; ``run`` returns how many units it did."""
    figures = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = run()
        figures.append((time.perf_counter() - start) / units * 1e6)
    return statistics.median(figures)


def load_module(name: str, source: str) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="plait-profile-"))
    (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    return __import__(name)


# -- the interpreter's limits -------------------------------------------------------------------
def limit_task_switch() -> float:
    async def spin(k: int) -> None:
        for _ in range(k):
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(spin(2000) for _ in range(3)))

    loop = asyncio.new_event_loop()
    try:
        return median_us(lambda: (loop.run_until_complete(main()), 6000)[1], 5)
    finally:
        loop.close()


def limit_condition_handoff(one_cpu: bool = True) -> float:
    """A Condition ping-pong between two threads, on one CPU as plait's actors run (see
    plait.threads.affinity) or on the CPUs the process has."""
    from plait.threads import affinity

    mask = affinity.bind_one_cpu() if one_cpu else None
    try:
        return _condition_handoff()
    finally:
        affinity.restore(mask)


def _condition_handoff() -> float:
    rounds = 5000

    def once() -> int:
        cond = threading.Condition()
        turn = [0]

        def run(me: int) -> None:
            with cond:
                for _ in range(rounds):
                    while turn[0] != me:
                        cond.wait()
                    turn[0] = 1 - me
                    cond.notify()

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return 2 * rounds

    return median_us(once, 5)


def _events_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def limit_trace_event() -> tuple[str, float]:
    n = 20000
    plain = median_us(lambda: (_events_loop(n), n)[1], 5)
    counted = [0]
    if hasattr(sys, "monitoring"):
        mon = sys.monitoring  # type: ignore[attr-defined]
        tool = 5
        code = _events_loop.__code__

        def on_instruction(code: Any, offset: int) -> None:
            counted[0] += 1

        mon.use_tool_id(tool, "plait-profile")
        mon.register_callback(tool, mon.events.INSTRUCTION, on_instruction)
        mon.set_local_events(tool, code, mon.events.INSTRUCTION)
        try:
            traced = median_us(lambda: (_events_loop(n), n)[1], 5)
            counted[0] = 0
            _events_loop(n)
        finally:
            mon.set_local_events(tool, code, 0)
            mon.register_callback(tool, mon.events.INSTRUCTION, None)
            mon.free_tool_id(tool)
        kind = "sys.monitoring INSTRUCTION event"
    else:
        def local(frame: Any, event: str, arg: Any) -> Any:
            counted[0] += 1
            return local

        def global_(frame: Any, event: str, arg: Any) -> Any:
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return local

        def traced_run() -> int:
            sys.settrace(global_)
            try:
                _events_loop(n)
            finally:
                sys.settrace(None)
            return n

        traced = median_us(traced_run, 5)
        counted[0] = 0
        traced_run()
        kind = "sys.settrace opcode event"
    per_iteration_events = counted[0] / n
    return kind, (traced - plain) / per_iteration_events


# -- asyncio: one execution, layer by layer -----------------------------------------------------
class _Proxy:
    """Times every call into the engine (the binding and the Rust behind it)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


def _proxy_overhead_us() -> float:
    """What the proxy's own timing adds to each call it records (taken off the binding's
    figure): the time it records around a C call that does next to nothing."""
    import types

    proxied = _Proxy(types.SimpleNamespace(call=len))
    empty = ()
    for _ in range(20000):
        proxied.call(empty)
    return proxied.seconds / proxied.calls * 1e6


class _PyChooser:
    def choose_actor(self, runnable: list[int], current: int | None) -> int:
        return current if current in runnable else runnable[0]

    def choose(self, n: int) -> int:
        return 0

    def record_step(self, actor: int, accesses: Any) -> None:
        pass


def _timed_methods(owner: Any, names: list[str], spent: dict[str, float]) -> Callable[[], None]:
    """Wrap methods to add their inclusive time to ``spent``; returns the undo."""
    saved = {name: getattr(owner, name) for name in names}
    for name, original in saved.items():
        def wrapper(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - start
        setattr(owner, name, wrapper)

    def undo() -> None:
        for name, original in saved.items():
            setattr(owner, name, original)
    return undo


def profile_asyncio(limits: dict[str, float]) -> list[tuple[str, float, float]]:
    module = load_module("plait_profile_async", ASYNC_PROGRAM)
    n = 3
    body = module.make(n)
    reps = 300

    # 0. the floor: the program on a reused stdlib loop with virtual time, no choices
    class VirtualTimeLoop(asyncio.SelectorEventLoop):
        now = 0.0

        def time(self) -> float:
            return self.now

        def _run_once(self) -> None:
            ready, timers = self._ready, self._scheduled  # type: ignore[attr-defined]
            if not ready and timers:
                self.now = max(self.now, timers[0]._when)
            end = self.now + self._clock_resolution  # type: ignore[attr-defined]
            while timers and timers[0]._when < end:
                handle = heapq.heappop(timers)
                handle._scheduled = False
                ready.append(handle)
            for _ in range(len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()

    floor_loop = VirtualTimeLoop()
    floor = median_us(lambda: ([floor_loop.run_until_complete(body()) for _ in range(reps)],
                               reps)[1])
    floor_loop.close()

    # 1. plait's loop alone (one step per iteration, a choice at each task step)
    loop = PlaitLoop(DefaultChooser(), timer_slack=0.0)
    spent: dict[str, float] = {}
    undo = _timed_methods(PlaitLoop, ["plait_reset", "plait_finish"], spent)
    try:
        alone = median_us(lambda: ([run_execution(DefaultChooser(), None, body, 0.0, loop=loop)
                                    for _ in range(reps)], reps)[1])
        spent.clear()
        for _ in range(reps):
            run_execution(DefaultChooser(), None, body, 0.0, loop=loop)
        loop_teardown = sum(spent.values()) / reps * 1e6
    finally:
        undo()

    # 2. + the thread scheduler around it (the loop's thread is an actor; patches, gc)
    chooser = _PyChooser()

    def threaded_once() -> None:
        def call() -> None:
            run_execution(chooser, None, body, 0.0, sched=primitives.ACTIVE, loop=loop)
        run_threaded(chooser, 1, call, runner._NO_TRACER, event_loop=True,
                     record_footprints=False)

    import gc

    from plait.world import _step as world_step

    # as an exploration does (runner.Body.begin): collections see only new objects, and the
    # outside world's interception stays installed between executions
    gc.freeze()
    world_step.hold()
    with_threads = median_us(lambda: ([threaded_once() for _ in range(reps)], reps)[1])
    spent.clear()
    undo = _timed_methods(scheduler.Scheduler, ["shutdown"], spent)
    undo2 = _timed_methods(primitives, ["uninstall"], spent)
    try:
        for _ in range(reps):
            threaded_once()
    finally:
        undo()
        undo2()
    thread_teardown = sum(spent.values()) / reps * 1e6
    gc.unfreeze()
    world_step.release()
    loop.close()

    # 3. the whole exploration (dfs), with the engine's calls timed through a proxy
    overhead = _proxy_overhead_us()
    proxies: list[_Proxy] = []
    original = runner._new_explorer

    def proxied(*args: Any, **kwargs: Any) -> Any:
        proxy = _Proxy(original(*args, **kwargs))
        proxies.append(proxy)
        return proxy

    def explore(strategy: str, slack: float) -> tuple[float, float, float, int]:
        # skip_modules: this script's proxy is not code under test (traced, it would add
        # its own accesses to every step's footprint)
        test = plait.explore(strategy=strategy, max_executions=10**6, timer_slack=slack,
                             races="ignore", skip_modules=[__file__])(body)
        test.explore()  # warm
        figures = []
        for _ in range(5):
            proxies.clear()
            start = time.perf_counter()
            result = test.explore()
            seconds = time.perf_counter() - start
            binding = sum(p.seconds - p.calls * overhead / 1e6 for p in proxies)
            figures.append((seconds, binding, result.steps, result.executions))
        seconds, binding, steps, executions = sorted(figures)[len(figures) // 2]
        return (seconds / executions * 1e6, binding / executions * 1e6, steps / executions,
                executions)

    runner._new_explorer = proxied  # type: ignore[assignment]
    try:
        dfs_us, dfs_binding, dfs_steps, dfs_runs = explore("dfs", 0.1)
        dpor_us, dpor_binding, _, dpor_runs = explore("dpor", 0.1)
    finally:
        runner._new_explorer = original  # type: ignore[assignment]

    # 4. recording the trace (only the confirming replay of a failure does it)
    options = plait.settings.resolve({"strategy": "dfs", "timer_slack": 0.1})
    recorder = runner.Body(body, True)
    recorder.begin(options)
    try:
        def recorded(record: bool) -> int:
            explorer = runner._new_explorer(options, "dfs", 50, None)
            count = 0
            while explorer.start_execution():
                error, _ = recorder.execute(explorer, explorer.execution_seed(), options, record)
                explorer.end_execution(error is not None)
                count += 1
            return count
        plain_exec = median_us(lambda: recorded(False), 5)
        recording = median_us(lambda: recorded(True), 5) - plain_exec
    finally:
        recorder.end()

    steps = dfs_steps
    rows = [
        ("the program itself (floor: stdlib loop, virtual time)", floor, floor / steps),
        ("plait's loop: one step per iteration, choices, reset", alone - floor - loop_teardown,
         (alone - floor - loop_teardown) / steps),
        ("  of which loop reset and teardown (cancel, finish)", loop_teardown, 0.0),
        ("thread scheduler around the loop (actors, patches, gc)", with_threads - alone,
         (with_threads - alone) / steps),
        ("  of which its teardown (shutdown, unpatch)", thread_teardown, 0.0),
        ("calls across the binding + engine's choice (dfs)", dfs_binding, dfs_binding / steps),
        ("runner: exploration loop, options, results (dfs)",
         dfs_us - with_threads - dfs_binding, (dfs_us - with_threads - dfs_binding) / steps),
        ("= one dfs execution", dfs_us, dfs_us / steps),
        ("dpor: tracing callbacks + footprint bookkeeping",
         dpor_us - dfs_us, (dpor_us - dfs_us) / steps),
        ("  of which the engine's share (record_step, wakeup trees)",
         dpor_binding - dfs_binding, (dpor_binding - dfs_binding) / steps),
        ("report: recording the trace (confirming replay only)", recording, recording / steps),
    ]
    print(f"\n== asyncio: {n} tasks, explore bench program; dfs {dfs_runs} executions, "
          f"dpor {dpor_runs}; {steps:.1f} steps per execution ==")
    print(f"{'part':<60} {'µs/exec':>8} {'µs/step':>8}")
    for name, per_exec, per_step in rows:
        step = f"{per_step:8.2f}" if per_step else f"{'':>8}"
        print(f"{name:<60} {per_exec:8.1f} {step}")
    switch = limits["task switch"]
    print(f"per step, dfs: {dfs_us / steps:.2f} µs = {dfs_us / steps / switch:.1f}x a bare asyncio "
          f"task switch ({switch:.2f} µs); the program alone: {floor / steps / switch:.1f}x; "
          f"plait's own share: {(dfs_us - floor) / steps / switch:.1f}x")
    print(f"per step, dpor: {dpor_us / steps:.2f} µs = {dpor_us / steps / switch:.1f}x a task switch")
    return rows


# -- threads -----------------------------------------------------------------------------------
def profile_threads(limits: dict[str, float]) -> None:
    module = load_module("plait_profile_threads", THREAD_PROGRAM)
    reps = 200
    from plait.threads import affinity

    mask = affinity.bind_one_cpu()  # the floor on one CPU too, as plait runs the threads
    try:
        floor = median_us(lambda: ([module.body() for _ in range(reps)], reps)[1])
    finally:
        affinity.restore(mask)

    switches = [0]
    original_switch = scheduler.Scheduler._switch

    def counting(self: Any, me: Any, target: Any) -> None:
        switches[0] += 1
        original_switch(self, me, target)

    overhead = _proxy_overhead_us()
    proxies: list[_Proxy] = []
    original = runner._new_explorer

    def proxied(*args: Any, **kwargs: Any) -> Any:
        proxy = _Proxy(original(*args, **kwargs))
        proxies.append(proxy)
        return proxy

    def explore(strategy: str) -> tuple[float, float, float, float, int]:
        # skip_modules: this script's own wrappers above are not code under test
        test = plait.explore(strategy=strategy, max_executions=10**6, races="ignore",
                             skip_modules=[__file__])(module.body)
        test.explore()
        figures = []
        for _ in range(3):
            proxies.clear()
            switches[0] = 0
            start = time.perf_counter()
            result = test.explore()
            seconds = time.perf_counter() - start
            binding = sum(p.seconds - p.calls * overhead / 1e6 for p in proxies)
            figures.append((seconds, binding, result.steps, switches[0], result.executions))
        seconds, binding, steps, switched, executions = sorted(figures)[1]
        return (seconds / executions * 1e6, binding / executions * 1e6, steps / executions,
                switched / executions, executions)

    scheduler.Scheduler._switch = counting  # type: ignore[method-assign]
    runner._new_explorer = proxied  # type: ignore[assignment]
    try:
        dfs_us, dfs_binding, steps, dfs_switches, runs = explore("dfs")
        dpor_us, _, _, _, dpor_runs = explore("dpor")
    finally:
        scheduler.Scheduler._switch = original_switch  # type: ignore[method-assign]
        runner._new_explorer = original  # type: ignore[assignment]

    handoff = handoff_us()
    kind, event = limits["event kind"], limits["trace event"]  # type: ignore[assignment]
    handoffs = dfs_switches * handoff
    rest = dfs_us - floor - handoffs - dfs_binding
    print(f"\n== threads: 2-thread lost update; dfs {runs} executions, dpor {dpor_runs}; "
          f"{steps:.1f} steps and {dfs_switches:.1f} handoffs per dfs execution ==")
    print(f"{'part':<60} {'µs/exec':>8} {'µs/step':>8}")
    for name, per_exec in (
            ("the program itself (2 real threads started and joined)", floor),
            (f"handoffs ({dfs_switches:.1f} x {handoff:.1f} µs)", handoffs),
            ("calls across the binding + engine's choice", dfs_binding),
            ("tracing callbacks, scheduling points, actors, patches, gc", rest),
            ("= one dfs execution", dfs_us),
            ("dpor: + footprint bookkeeping (per execution, its own schedules)",
             dpor_us - dfs_us)):
        print(f"{name:<60} {per_exec:8.1f} {per_exec / steps:8.2f}")
    condition = limits["condition handoff"]
    print(f"handoff: {handoff:.2f} µs = {handoff / condition:.1f}x a threading.Condition "
          f"ping-pong on one CPU ({condition:.2f} µs; on the process's CPUs: "
          f"{limits['condition handoff, any CPU']:.2f} µs)")
    print(f"per step: {(dfs_us - floor) / steps:.2f} µs of plait = "
          f"{(dfs_us - floor) / steps / event:.0f}x one {kind} ({event:.3f} µs)")


def handoff_us() -> float:
    """One plait thread handoff: points that switch (random) minus points that do not (dfs)."""
    source = '''
import plait, threading
def make(n):
    def body():
        def work():
            for _ in range(n):
                plait.point()
        ts = [threading.Thread(target=work) for _ in range(2)]
        for t in ts: t.start()
        for t in ts: t.join()
    return body
'''
    module = load_module("plait_profile_handoff", source)
    switches = [0]
    original = scheduler.Scheduler._switch

    def counting(self: Any, me: Any, target: Any) -> None:
        switches[0] += 1
        original(self, me, target)

    scheduler.Scheduler._switch = counting  # type: ignore[method-assign]
    try:
        figures = []
        for _ in range(3):
            rows = []
            for strategy in ("dfs", "random"):
                switches[0] = 0
                test = plait.explore(strategy=strategy, max_executions=1, races="ignore",
                                     skip_modules=[__file__])(module.make(5000))
                start = time.perf_counter()
                test.explore()
                rows.append((time.perf_counter() - start, switches[0]))
            (still, s_still), (moving, s_moving) = rows
            figures.append((moving - still) / max(1, s_moving - s_still) * 1e6)
        return statistics.median(figures)
    finally:
        scheduler.Scheduler._switch = original  # type: ignore[method-assign]


def main() -> None:
    print(f"Python {sys.version.split()[0]}; medians of repeated runs in this process")
    kind, event = limit_trace_event()
    limits: dict[str, Any] = {
        "task switch": limit_task_switch(),
        "condition handoff": limit_condition_handoff(),
        "condition handoff, any CPU": limit_condition_handoff(one_cpu=False),
        "trace event": event,
        "event kind": kind,
    }
    print("the interpreter's limits:")
    print(f"  asyncio task switch (sleep(0) among 3 tasks): {limits['task switch']:.2f} µs")
    print(f"  threading.Condition ping-pong, one handoff:  {limits['condition handoff']:.2f} µs "
          f"on one CPU, {limits['condition handoff, any CPU']:.2f} µs on any")
    print(f"  one {kind}:              {event:.3f} µs")
    profile_asyncio(limits)
    profile_threads(limits)


if __name__ == "__main__":
    main()
