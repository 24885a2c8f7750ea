"""Data races without an invariant: conflicting accesses that nothing orders.

Happens-before comes from the synchronization the execution performed: lock operations and
thread start/join are sync accesses; each sync location carries a vector clock that the
accessing thread joins and then publishes (a total order per location, as the execution
ran it). Two accesses to the same location from different threads, at least one a write,
race when neither one's clock is below the other's (FastTrack's check, on one execution).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from plait._paths import short_path


class RaceWarning(UserWarning):
    """Unsynchronized conflicting accesses were seen, even though the test passed."""


@dataclass(frozen=True)
class Race:
    what: str
    first: tuple[str, bool, Any]  # (thread, write, where)
    second: tuple[str, bool, Any]

    def describe(self) -> str:
        def side(part: tuple[str, bool, Any]) -> str:
            name, write, where = part
            at = f" at {short_path(where[0])}:{where[1]}" if where else ""
            return f"{name} {'wrote' if write else 'read'} it{at}"

        return f"{self.what}: {side(self.first)}, and {side(self.second)}, with nothing " \
               f"ordering the two (no lock, start or join between them)"


def _leq(a: dict[int, int], b: dict[int, int]) -> bool:
    return all(b.get(k, 0) >= v for k, v in a.items())


def find_races(sched: Any) -> list[Race]:
    names = {actor.id: actor.name for actor in sched.actors.values()}
    clocks: dict[int, dict[int, int]] = {}
    sync: dict[int, dict[int, int]] = {}
    last_write: dict[int, tuple[int, dict[int, int], Any]] = {}
    reads: dict[int, dict[int, tuple[dict[int, int], Any]]] = {}
    found: dict[tuple[int, Any, Any], Race] = {}

    def clock(actor: int) -> dict[int, int]:
        return clocks.setdefault(actor, {actor: 1})

    def report(key: int, a: int, acc_a: Any, b: int, acc_b: Any) -> None:
        ident = (key, acc_a.where, acc_b.where)
        if ident not in found:
            what = acc_b.what if not acc_b.what.startswith(".") else acc_a.what
            found[ident] = Race(what, (names.get(a, str(a)), acc_a.write, acc_a.where),
                                (names.get(b, str(b)), acc_b.write, acc_b.where))

    for actor, access in sched.accesses:
        mine = clock(actor)
        if access.sync:
            published = sync.get(access.key, {})
            for k, v in published.items():
                if mine.get(k, 0) < v:
                    mine[k] = v
            mine[actor] = mine.get(actor, 0) + 1
            sync[access.key] = dict(mine)
            continue
        key = access.key
        previous = last_write.get(key)
        if previous is not None and previous[0] != actor and not _leq(previous[1], mine):
            report(key, previous[0], previous[2], actor, access)
        if access.write:
            for other, (seen, earlier) in reads.get(key, {}).items():
                if other != actor and not _leq(seen, mine):
                    report(key, other, earlier, actor, access)
            last_write[key] = (actor, dict(mine), access)
            reads[key] = {}
        else:
            reads.setdefault(key, {})[actor] = (dict(mine), access)
        mine[actor] = mine.get(actor, 0) + 1
    return list(found.values())


def check(sched: Any, mode: str, name: str,
          where: tuple[str, int] | None = None) -> list[Race]:
    """Warn about (or fail on) the races of a recorded execution, as ``mode`` says."""
    if mode == "ignore" or sched is None:
        return []
    races = find_races(sched)
    if not races:
        return races
    text = f"plait: {name}: {len(races)} data race(s), though the test passed:\n" + \
        "\n".join(f"  {race.describe()}" for race in races)
    if mode == "error":
        from plait.errors import InterleavingFailure

        raise InterleavingFailure(text, "", {"races": len(races)})
    if where is None:
        warnings.warn(text, RaceWarning, stacklevel=4)
    else:  # at the test's own definition, not inside plait
        warnings.warn_explicit(text, RaceWarning, where[0], where[1])
    return races
