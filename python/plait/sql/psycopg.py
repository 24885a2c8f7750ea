"""psycopg (3): every statement is a step, and a statement waiting for a lock blocks its actor.

psycopg's classes are Python: plait patches ``Cursor.execute`` / ``executemany``,
``Connection.commit`` / ``rollback`` / ``close``, ``Transaction.__exit__`` and
``Connection.wait`` (and their ``Async`` twins, but ``wait``) in place, once, at an
exploration's first execution (when psycopg is imported), so connections made before it
(module-level, pools, fixtures) are covered.
Outside an execution each costs one global lookup.

Waiting in the server: psycopg runs each statement as a generator over the socket, consumed
by ``Connection.wait``. plait's ``wait`` polls the socket; while no answer has come it asks
the server, from a private monitoring connection, whether the statement's backend waits for
a lock (``pg_blocking_pids``). If it does, the actor blocks (``plait.world.block``) until a
statement ends on that database, and looks again. Nothing waits on a timeout: the answer
either comes, or the server says who holds the lock. When every actor waits (two
transactions each holding what the other needs) plait reports the deadlock before
PostgreSQL's own detector would, names both transactions' statements, and cancels the
blocked statements so the server is left clean.
"""

from __future__ import annotations

import _thread
import atexit
import select
from typing import Any

from plait.sql import _step as sql_step
from plait.sql._footprint import TableInfo
from plait.world import _step

_PATCHED: dict[tuple[Any, str], Any] = {}
_POLL = 0.002  # seconds between looks at the socket before asking the server
_MONITORS: dict[str, Any] = {}  # db -> private autocommit connection
_MONITOR_LOCK = _thread.allocate_lock()
_PIDS: dict[int, int] = {}  # backend pid -> conn_id of a connection plait saw
_SCHEMAS: dict[str, dict[str, TableInfo | None]] = {}
_step.on_activate(_SCHEMAS.clear)
_IN_STATEMENT: dict[int, tuple[str, int, str]] = {}  # thread -> (db, conn_id, what)


def identity(conn: Any) -> str:
    info = conn.info
    return f"postgresql:{info.host}:{info.port}/{info.dbname}"




def _monitor(conn: Any, db: str) -> Any:
    found = _MONITORS.get(db)
    if found is None or found.closed or found.broken:
        import psycopg

        kwargs = dict(conn.info.get_parameters())
        params = {k: v for k, v in kwargs.items() if k in ("host", "port", "dbname", "user")}
        found = _MONITORS[db] = psycopg.Connection.connect(autocommit=True, **params)
        found._plait_private = True  # type: ignore[attr-defined]
        found.lock = _thread.allocate_lock()  # a real lock: using it is no scheduling point
    return found


def close_monitors() -> None:
    """Close the monitoring connections (at exit, or when their database goes away)."""
    with _MONITOR_LOCK:
        for monitor in _MONITORS.values():
            try:
                monitor.close()
            except Exception:
                pass
        _MONITORS.clear()


atexit.register(close_monitors)


def _query(conn: Any, db: str, sql: str, params: Any) -> list[Any]:
    with _MONITOR_LOCK:
        monitor = _monitor(conn, db)
        cursor = monitor.cursor()
        try:
            _ORIGINAL_EXECUTE(cursor, sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


_SCHEMA_SQL = """
SELECT c.relkind,
  (SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indrelid = c.oid AND i.indisprimary),
  (SELECT array_agg(cols) FROM (
     SELECT array_to_string(array_agg(a.attname::text
                                      ORDER BY array_position(i.indkey::int2[], a.attnum)), ',')
            AS cols
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary
      GROUP BY i.indexrelid) u),
  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
  (SELECT array_agg(DISTINCT p.relname::text) FROM pg_constraint f
     JOIN pg_class p ON p.oid = f.confrelid WHERE f.contype = 'f' AND f.conrelid = c.oid),
  (SELECT array_agg(DISTINCT k.relname::text) FROM pg_constraint f
     JOIN pg_class k ON k.oid = f.conrelid
    WHERE f.contype = 'f' AND f.confrelid = c.oid
      AND (f.confdeltype IN ('c', 'n', 'd') OR f.confupdtype IN ('c', 'n', 'd')))
FROM pg_class c WHERE lower(c.relname) = %s AND pg_table_is_visible(c.oid)
"""


def _schema_of(conn: Any, db: str) -> Any:
    tables = _SCHEMAS.setdefault(db, {})

    def schema(table: str) -> TableInfo | None:
        if table not in tables:
            tables[table] = _lookup(conn, db, table)
        return tables[table]

    return schema


def _lookup(conn: Any, db: str, table: str) -> TableInfo | None:
    try:
        rows = _query(conn, db, _SCHEMA_SQL, (table,))
    except Exception:
        return None  # coarse is sound
    if len(rows) != 1:
        return None  # unknown, not committed yet, or several schemas: the whole table
    kind, pk, unique, triggers, parents, cascades = rows[0]
    if kind not in ("r", "p") or triggers:
        return TableInfo(plain=False)
    return TableInfo(tuple(c.lower() for c in pk) if pk else None,
                     tuple(tuple(u.lower().split(",")) for u in unique or ()),
                     tuple(sorted(p.lower() for p in parents or ())),
                     tuple(sorted(k.lower() for k in cascades or ())))


def _text(conn: Any, query: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if as_string is not None:
        try:
            return str(as_string(conn))
        except Exception:
            pass
    return str(query)


def _isolation(conn: Any) -> str | None:
    level = conn.isolation_level
    return None if level is None else level.name.replace("_", " ")


def _in_transaction(conn: Any) -> bool:
    from psycopg.pq import TransactionStatus

    return (not conn.autocommit) or conn.info.transaction_status != TransactionStatus.IDLE


def _statement(conn: Any, sql: str, params: Any, call: Any) -> Any:
    db = identity(conn)
    conn_id = id(conn)
    pid = conn.info.backend_pid
    _PIDS[pid] = conn_id
    parsed = sql_step.statement(db, sql, params, conn_id=conn_id, dialect="postgres",
                                schema=_schema_of(conn, db),
                                in_transaction=_in_transaction(conn),
                                isolation=_isolation(conn))
    ident = _thread.get_ident()
    _IN_STATEMENT[ident] = (db, conn_id, sql_step.statement_text(sql, params))
    try:
        return call()
    finally:
        _IN_STATEMENT.pop(ident, None)
        _after(conn, db, parsed)


def _after(conn: Any, db: str, parsed: Any) -> None:
    from psycopg.pq import TransactionStatus

    try:
        idle = conn.closed or conn.info.transaction_status == TransactionStatus.IDLE
    except Exception:
        idle = True
    if idle:
        sql_step.ended(id(conn))
    if parsed is not None and parsed.kind == "outside":
        _SCHEMAS.pop(db, None)
    sql_step.released(db)


# -- the patched methods -------------------------------------------------------------------------
def _steps(conn: Any) -> bool:
    """Are ``conn``'s statements steps here (a running actor's, on a user's connection)?"""
    return sql_step.may_step() and not getattr(conn, "_plait_private", False)


def _exit_sql(transaction: Any, exc_type: Any) -> str:
    """What leaving a ``transaction()`` block sends: the outer one ends the transaction,
    a nested one its savepoint."""
    if getattr(transaction, "_outer_transaction", False):
        return "COMMIT" if exc_type is None else "ROLLBACK"
    return "RELEASE SAVEPOINT" if exc_type is None else "ROLLBACK TO SAVEPOINT"


def _execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    conn = self._conn
    if not _steps(conn):
        return _ORIGINAL_EXECUTE(self, query, params, **kwargs)
    return _statement(conn, _text(conn, query), params,
                      lambda: _ORIGINAL_EXECUTE(self, query, params, **kwargs))


def _executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
    conn = self._conn
    original = _ORIGINAL_MANY
    if not _steps(conn):
        return original(self, query, params_seq, **kwargs)
    rows = list(params_seq)
    return _statement(conn, _text(conn, query), rows[0] if len(rows) == 1 else None,
                      lambda: original(self, query, rows, **kwargs))


def _ending(name: str, sql: str) -> Any:
    def method(self: Any) -> Any:
        original = _PATCHED[(_CONNECTION, name)]
        if not _steps(self):
            return original(self)
        from psycopg.pq import TransactionStatus

        if self.closed or self.info.transaction_status == TransactionStatus.IDLE:
            return original(self)  # nothing to end: not a statement
        return _statement(self, sql, None, lambda: original(self))

    method.__name__ = name
    return method


def _transaction_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    original = _PATCHED[(_TRANSACTION, "__exit__")]
    conn = self._conn
    if not _steps(conn) or conn.closed:
        return original(self, exc_type, exc_val, exc_tb)
    return _statement(conn, _exit_sql(self, exc_type), None, lambda: original(self, exc_type, exc_val, exc_tb))


def _wait(self: Any, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
    """``Connection.wait`` that tells plait when the statement waits for a lock."""
    original = _PATCHED[(_CONNECTION, "wait")]
    ident = _thread.get_ident()
    running = _IN_STATEMENT.get(ident)
    if running is None or timeout is not None or not _steps(self):
        return original(self, gen, interval, timeout)
    db, conn_id, what = running
    from psycopg import waiting

    fileno = self.pgconn.socket
    pid = self.info.backend_pid
    lock: sql_step.DatabaseLock | None = None
    try:
        state = next(gen)
        while True:
            readable = state & waiting.WAIT_R
            writable = state & waiting.WAIT_W
            r, w, _x = select.select([fileno] if readable else [], [fileno] if writable else [],
                                     [], _POLL)
            if r or w:
                state = gen.send((waiting.READY_R if r else 0) | (waiting.READY_W if w else 0))
                continue
            if not readable:
                continue
            holders = _blocking(self, db, pid)
            if not holders:
                continue  # the server is working on it
            if lock is None:
                lock = sql_step.DatabaseLock(db, conn_id, "a lock in the server")
            known = [_PIDS.get(p) for p in holders]
            lock.holders = lambda known=known: [k for k in known if k is not None]
            sql_step.wait(lock, f"{what} waits for a lock held by backend "
                                f"{', '.join(map(str, holders))}")
    except StopIteration as stop:
        return stop.value
    except BaseException:
        _cancel(self, gen, fileno, original, interval)
        raise


def _blocking(conn: Any, db: str, pid: int) -> list[int]:
    try:
        rows = _query(conn, db, "SELECT pg_blocking_pids(%s)", (pid,))
    except Exception:
        return []
    return list(rows[0][0] or []) if rows else []


def _cancel(conn: Any, gen: Any, fileno: int, original: Any, interval: float) -> None:
    """The execution ended while the statement waited: cancel it in the server, so the
    transactions left behind hold no lock a later execution would wait for."""
    try:
        conn.cancel()
        original(conn, gen, interval, 5.0)
    except BaseException:
        pass


# -- asyncio: AsyncCursor / AsyncConnection ----------------------------------------------------
# Inside a task the statement's footprint joins the task step that sends it; the task then
# awaits the answer on its socket (a lock another task's transaction holds keeps it waiting
# there, while the loop runs the others).
async def _statement_async(conn: Any, sql: str, params: Any, call: Any) -> Any:
    db = identity(conn)
    _PIDS[conn.info.backend_pid] = id(conn)
    parsed = sql_step.statement(db, sql, params, conn_id=id(conn), dialect="postgres",
                                schema=_schema_of(conn, db),
                                in_transaction=_in_transaction(conn),
                                isolation=_isolation(conn))
    try:
        return await call()
    finally:
        _after(conn, db, parsed)


async def _aexecute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    conn = self._conn
    original = _PATCHED[(_ASYNC_CURSOR, "execute")]
    if not _steps(conn):
        return await original(self, query, params, **kwargs)
    return await _statement_async(conn, _text(conn, query), params,
                                  lambda: original(self, query, params, **kwargs))


async def _aexecutemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
    conn = self._conn
    original = _PATCHED[(_ASYNC_CURSOR, "executemany")]
    if not _steps(conn):
        return await original(self, query, params_seq, **kwargs)
    rows = list(params_seq)
    return await _statement_async(conn, _text(conn, query), rows[0] if len(rows) == 1 else None,
                                  lambda: original(self, query, rows, **kwargs))


def _aending(name: str, sql: str) -> Any:
    async def method(self: Any) -> Any:
        original = _PATCHED[(_ASYNC_CONNECTION, name)]
        if not _steps(self):
            return await original(self)
        from psycopg.pq import TransactionStatus

        if self.closed or self.info.transaction_status == TransactionStatus.IDLE:
            return await original(self)
        return await _statement_async(self, sql, None, lambda: original(self))

    method.__name__ = name
    return method


async def _atransaction_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    original = _PATCHED[(_ASYNC_TRANSACTION, "__aexit__")]
    conn = self._conn
    if not _steps(conn) or conn.closed:
        return await original(self, exc_type, exc_val, exc_tb)
    return await _statement_async(conn, _exit_sql(self, exc_type), None,
                                  lambda: original(self, exc_type, exc_val, exc_tb))


_ASYNC_CURSOR: Any = None
_ASYNC_CONNECTION: Any = None
_ASYNC_TRANSACTION: Any = None
_CONNECTION: Any = None
_TRANSACTION: Any = None
_ORIGINAL_EXECUTE: Any = None
_ORIGINAL_MANY: Any = None


def install() -> None:
    """Patch psycopg's classes (once; they stay patched, passing through outside executions)."""
    global _CONNECTION, _TRANSACTION, _ORIGINAL_EXECUTE, _ORIGINAL_MANY
    global _ASYNC_CURSOR, _ASYNC_CONNECTION, _ASYNC_TRANSACTION
    if _PATCHED:
        return
    import psycopg

    _CONNECTION, _TRANSACTION = psycopg.Connection, psycopg.Transaction
    _ASYNC_CURSOR, _ASYNC_CONNECTION = psycopg.AsyncCursor, psycopg.AsyncConnection
    _ASYNC_TRANSACTION = psycopg.AsyncTransaction
    sql_step.DRIVER_HOOKS.append(
        lambda conn: isinstance(conn, psycopg.Connection | psycopg.AsyncConnection))
    _ORIGINAL_EXECUTE = psycopg.Cursor.execute
    _ORIGINAL_MANY = psycopg.Cursor.executemany
    for owner, name, replacement in (
            (psycopg.Cursor, "execute", _execute),
            (psycopg.Cursor, "executemany", _executemany),
            (psycopg.Connection, "commit", _ending("commit", "COMMIT")),
            (psycopg.Connection, "rollback", _ending("rollback", "ROLLBACK")),
            (psycopg.Connection, "close", _ending("close", "ROLLBACK")),
            (psycopg.Connection, "wait", _wait),
            (psycopg.Transaction, "__exit__", _transaction_exit),
            (psycopg.AsyncCursor, "execute", _aexecute),
            (psycopg.AsyncCursor, "executemany", _aexecutemany),
            (psycopg.AsyncConnection, "commit", _aending("commit", "COMMIT")),
            (psycopg.AsyncConnection, "rollback", _aending("rollback", "ROLLBACK")),
            (psycopg.AsyncConnection, "close", _aending("close", "ROLLBACK")),
            (psycopg.AsyncTransaction, "__aexit__", _atransaction_exit)):
        _PATCHED[(owner, name)] = owner.__dict__[name]
        setattr(owner, name, replacement)
