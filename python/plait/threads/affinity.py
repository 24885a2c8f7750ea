"""One CPU for an exploration's threads: the cheapest thread handoff the OS has.

Exactly one actor thread runs at a time (the others wait on their baton), so a second CPU
buys an exploration nothing, and costs every handoff: waking a thread that sleeps on
another CPU takes that CPU out of idle and moves the GIL across caches (25-40 µs measured
on this 2-core machine, against 2-4 µs when both threads share one CPU; see
``benches/profile_bench.py``). While a thread exploration runs, the exploring thread is
bound to one of the CPUs it may use; the threads it starts inherit that, and the mask it
had comes back when the exploration ends. Processes started meanwhile inherit it too.

``PLAIT_ONE_CPU=0`` leaves the affinity alone. Where the OS has no affinity call (macOS,
Windows) this does nothing.
"""

from __future__ import annotations

import os

_ENABLED = os.environ.get("PLAIT_ONE_CPU", "1").strip().lower() not in ("0", "false", "no", "off")


def bind_one_cpu() -> frozenset[int] | None:
    """Bind the calling thread to one of its CPUs. Returns the mask to restore, or None."""
    if not _ENABLED or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return None
        # spread concurrent explorations (pytest-xdist workers) over the CPUs
        os.sched_setaffinity(0, {allowed[os.getpid() % len(allowed)]})
    except OSError:
        return None
    return frozenset(allowed)


def restore(mask: frozenset[int] | None) -> None:
    if mask is None:
        return
    try:
        os.sched_setaffinity(0, mask)
    except OSError:
        pass
