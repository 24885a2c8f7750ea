"""The loop's fast paths give the same answers as the plain ones they replace."""

from __future__ import annotations

import heapq
import random
from typing import Any

from plait.aio.loop import _due_by


class _Timer:
    def __init__(self, when: float, cancelled: bool) -> None:
        self._when = when
        self._cancelled = cancelled

    def __lt__(self, other: Any) -> bool:
        return bool(self._when < other._when)


def test_due_timers_walk_matches_a_full_scan() -> None:
    rng = random.Random(7)
    for _ in range(500):
        heap: list[_Timer] = []
        for _ in range(rng.randrange(1, 30)):
            # few distinct deadlines, so ties are common
            heapq.heappush(heap, _Timer(rng.randrange(10) / 100, rng.random() < 0.2))
        horizon = heap[0]._when + rng.choice([0.0, 0.01, 0.03, 0.1])
        expected = sorted((h for h in heap if h is not heap[0] and not h._cancelled
                           and h._when <= horizon), key=lambda h: h._when)
        assert _due_by(heap, horizon) == expected
