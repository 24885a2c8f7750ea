"""A statement is a step: the one entry point every driver hook calls.

``statement(db, sql, params, conn_id=..., dialect=...)`` is ``plait.world.external_step``
for one SQL statement: a scheduling point (in a thread actor) whose step carries the
statement's footprint (``_footprint``), plus what its transaction adds:

- A transaction's writes become visible to others when it commits, so ``COMMIT`` (and
  ``ROLLBACK``, which makes them vanish) writes again every key the transaction wrote.
  Under READ COMMITTED that is all reads need: each statement reads the committed state
  when it runs.
- In a REPEATABLE READ or SERIALIZABLE transaction the first statement takes the snapshot
  every later read sees: it writes ``("sql", db, "snapshot")``, which every commit that
  wrote something reads, so a snapshot and a commit are explored in both orders.
- Row and table writes also take a *sync* access on a lock key, released at the end of
  the transaction (or of the statement in autocommit): a statement that had to wait for
  another transaction is ordered after it for race detection, as it is in the database.

Waiting in the database (a lock another actor's transaction holds) goes through
``plait.world.block`` on a :class:`DatabaseLock`; every statement that ends on a database
wakes its waiters, who try again (``released``). When every actor waits, plait reports a
deadlock naming each waiter's lock and the open transactions' statements.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait.sql._footprint import TX_KINDS, Parsed, Schema, parse, statement_text
from plait.sql._footprint import effects as statement_effects
from plait.world import Effect, _step
from plait.world._step import Where

SNAPSHOT_LEVELS = frozenset({"REPEATABLE READ", "SERIALIZABLE"})
_ENDS = frozenset({"commit", "rollback", "rollback_to"})


@dataclass
class Transaction:
    """What plait knows of one connection's open transaction."""

    db: str
    actor: str
    isolation: str | None = None
    snapshot: bool = False  # its snapshot was taken (REPEATABLE READ / SERIALIZABLE)
    written: dict[tuple[Any, ...], str] = field(default_factory=dict)  # key -> label
    statements: list[str] = field(default_factory=list)
    ending: bool = False  # its COMMIT or ROLLBACK was sent

    def describe(self) -> str:
        shown = "; ".join(self.statements[-4:]) or "no statement yet"
        more = f"{len(self.statements) - 4} earlier; " if len(self.statements) > 4 else ""
        return f"{self.actor}'s transaction ({more}{shown})"


_OPEN: dict[Any, Transaction] = {}  # conn_id -> its open transaction
_step.on_activate(_OPEN.clear)


def _actor_name(sched: Any) -> str:
    actor = sched.me()
    if actor is None:
        return "?"
    if actor.no_points:
        import asyncio

        task = asyncio.current_task() if asyncio._get_running_loop() is not None else None
        if task is not None:
            return task.get_name()
    return str(actor.name)


DRIVER_HOOKS: list[Callable[[Any], bool]] = []
"""Predicates saying a DB-API/driver connection's statements are already steps at the
driver (sqlite3, psycopg, asyncpg's hook...): the SQLAlchemy and Django hooks then stay out."""


def driver_hooked(driver_connection: Any) -> bool:
    return any(hooked(driver_connection) for hooked in DRIVER_HOOKS)


def task_user_frame() -> Where | None:
    """The user's line in the running asyncio task: the innermost frame of the user's code
    along the task's chain of awaits (an asyncio driver, or SQLAlchemy's asyncio engine,
    runs the statement below the user's await, in a greenlet whose frames do not lead up)."""
    import asyncio

    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    coro: Any = task.get_coro() if task is not None else None
    found: Where | None = None
    depth = 0
    while coro is not None and depth < 60:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and not _step.is_library(frame.f_code.co_filename):
            found = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        depth += 1
    return found


def active() -> bool:
    """Is the calling thread an actor of a running execution (statements are steps)?"""
    sched = _step._SCHED
    return sched is not None and not sched.over and sched.me() is not None


def may_step() -> bool:
    """:func:`active`, and not inside an ``external_call`` (plait's own ``reset_tables``):
    that call is the step, the statements it runs are not steps of their own."""
    return active() and not (_step._QUIET and _step._QUIET.get(_thread.get_ident()))


def statement(db: str, sql: str, params: Any = None, *, conn_id: Any, dialect: str,
              schema: Schema | None = None, where: Where | None = None,
              in_transaction: bool | None = None, isolation: str | None = None) -> Parsed | None:
    """The running actor is about to run ``sql`` on database ``db`` through connection
    ``conn_id`` (any hashable naming the connection in this process). A scheduling point in
    a thread actor, a footprint joining the task step in an asyncio task; nothing outside
    an execution (returns None then).

    ``dialect``: sqlglot's ("sqlite", "postgres"). ``schema(table)`` gives a table's
    primary key and constraints (rows are keyed by it; None: tables only).
    ``in_transaction``: whether the connection is inside a transaction before the
    statement runs, when the driver knows (drivers that open one implicitly, as sqlite3
    and psycopg do, say so). ``isolation``: the level the driver will begin it with.
    """
    sched = _step._SCHED
    if sched is None or sched.over:
        return None
    actor = sched.me()
    if actor is None:
        return None
    parsed = parse(sql, dialect)
    if where is None and actor.no_points and sched.trace is not None:
        where = task_user_frame() or _step.user_frame(sys._getframe(1))
    what = statement_text(sql, params)
    tx = _OPEN.get(conn_id)
    kind = parsed.kind
    if tx is not None and (tx.db != db or (tx.ending and kind not in _ENDS)):
        tx = _OPEN.pop(conn_id)  # its COMMIT went through: this statement comes after it
        tx = None
    if in_transaction and tx is None:
        tx = _OPEN[conn_id] = Transaction(db, _actor_name(sched), isolation)
    effects: list[Effect]
    if kind in TX_KINDS or kind == "isolation":
        effects = []
        if kind == "begin":
            tx = _OPEN[conn_id] = Transaction(db, _actor_name(sched),
                                              parsed.isolation or isolation)
        elif kind == "isolation" and tx is not None:
            tx.isolation = parsed.isolation
        elif kind in _ENDS and tx is not None:
            effects = _ending(tx, db)
            # kept until the driver says it ended (``ended``) or the next statement comes:
            # a COMMIT that has to wait for a lock is still this transaction's
            tx.ending = kind != "rollback_to"
    else:
        effects = statement_effects(parsed, params, db, schema)
        if tx is not None:
            tx.statements.append(what)
            if tx.isolation in SNAPSHOT_LEVELS and not tx.snapshot:
                tx.snapshot = True
                effects.append(Effect(("sql", db, "snapshot"), True,
                                      "the transaction's snapshot", race=False))
        locks = []  # taken before the data is touched (a sync access joins, then publishes)
        for effect in effects:
            if effect.write and effect.race and effect.key[0] == "sql":
                locks.append(Effect(("sql-lock", *effect.key[1:]), True, effect.label,
                                    race=False, sync=True))
                if tx is not None:
                    tx.written[effect.key] = effect.label
        effects = locks + effects
    _step.step(sched, what, effects, where, 2)
    return parsed


def _ending(tx: Transaction, db: str) -> list[Effect]:
    """COMMIT / ROLLBACK: the transaction's writes become visible (or vanish) now."""
    out: list[Effect] = []
    for key, label in tx.written.items():
        out.append(Effect(key, True, label))
        out.append(Effect(("sql-lock", *key[1:]), True, label, race=False, sync=True))
    if tx.written:
        out.append(Effect(("sql", db, "snapshot"), False, "the transaction's snapshot",
                          race=False))
    return out


def ended(conn_id: Any) -> None:
    """The connection's transaction is over without a statement plait saw (closed)."""
    _OPEN.pop(conn_id, None)


def in_transaction(conn_id: Any) -> bool:
    tx = _OPEN.get(conn_id)
    return tx is not None and not tx.ending


def note_transaction(conn_id: Any, db: str, isolation: str | None = None) -> None:
    """The driver opened a transaction on its own (an implicit BEGIN) before a statement."""
    sched = _step._SCHED
    if sched is not None and conn_id not in _OPEN:
        _OPEN[conn_id] = Transaction(db, _actor_name(sched), isolation)


# -- waiting in the database --------------------------------------------------------------------
class DatabaseLock:
    """What a statement waits for in the database: the lock another transaction holds."""

    __slots__ = ("conn_id", "db", "holders", "what")

    def __init__(self, db: str, conn_id: Any, what: str) -> None:
        self.db = db
        self.conn_id = conn_id
        self.what = what
        self.holders: Callable[[], list[Any]] | None = None  # conn_ids, when the driver knows

    def plait_label(self) -> str:
        known = self.holders() if self.holders is not None else None
        others = [(cid, tx) for cid, tx in list(_OPEN.items())
                  if tx.db == self.db and cid != self.conn_id
                  and (known is None or cid in known)]
        if not others:
            return f"{self.what} (held by no transaction plait runs: another connection, " \
                   f"or one left open by an earlier execution)"
        held = "; ".join(tx.describe() for _, tx in others)
        return f"{self.what}, held by {held}"


_WAITING: dict[str, list[DatabaseLock]] = {}  # db -> locks actors are blocked on
_step.on_activate(_WAITING.clear)


def wait(lock: DatabaseLock, what: str) -> None:
    """Block the running thread actor until a statement ends on ``lock.db``."""
    _WAITING.setdefault(lock.db, []).append(lock)
    try:
        _step.block(lock, what)
    finally:
        waiting = _WAITING.get(lock.db)
        if waiting is not None and lock in waiting:
            waiting.remove(lock)


def released(db: str) -> None:
    """A statement ended on ``db`` (a commit, a rollback, a statement that released its
    locks): the actors waiting there try again."""
    waiting = _WAITING.get(db)
    if waiting:
        for lock in list(waiting):
            _step.wake(lock)
