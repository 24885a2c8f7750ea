"""sqlite3 (the standard library's driver): every statement is a step, with no annotation.

``sqlite3.Connection`` and ``Cursor`` are C types whose methods cannot be patched, so plait
replaces ``sqlite3.connect`` (when the pytest plugin loads, before test modules and their
fixtures connect) with one that makes its connections subclasses: :class:`Connection`
and :class:`Cursor`, or the user's own ``factory=`` classes with plait's under them.
Outside an execution their methods cost one global lookup and call the real ones.
Connections made before the plugin loaded, or by ``sqlite3.Connection(...)`` directly, are
the real C objects and are not seen.

The database's identity is the real path of its file (an in-memory database: one identity
per connection, as nobody else can see it). SQLite's own busy handler would sleep in real
time while another connection holds the lock; during an execution the connection's busy
timeout is 0, a ``SQLITE_BUSY`` statement blocks its actor (``plait.world.block``) until a
statement ends on the database, and is then retried. When every actor waits (two
transactions that each wait for the other's lock), plait reports the deadlock.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterable
from typing import Any

from plait.sql import _step as sql_step
from plait.sql._footprint import TableInfo, parse
from plait.world import _step

_REAL_CONNECT = sqlite3.connect
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (extended codes carry these in the low byte)
_MEMORY = [0, 0]


def _identity(database: Any, uri: bool) -> str:
    name = os.fsdecode(database) if not isinstance(database, str) else database
    if uri and name.startswith("file:"):
        path, _, query = name[5:].partition("?")
        if "mode=memory" in query or not path or path == ":memory:":
            return f"sqlite:memory:{path}" if "cache=shared" in query else _memory()
        name = path
    if name in ("", ":memory:"):
        return _memory()
    return "sqlite:" + os.path.realpath(name)


def _memory() -> str:
    """In-memory databases are numbered in the order an execution makes them (the same in
    every execution), those made outside one in a space of their own."""
    if _step._SCHED is None:
        _MEMORY[1] += 1
        return f"sqlite:memory#outside{_MEMORY[1]}"
    _MEMORY[0] += 1
    return f"sqlite:memory#{_MEMORY[0]}"


def _reset_memory() -> None:
    _MEMORY[0] = 0


_step.on_activate(_reset_memory)


class _State:
    """plait's bookkeeping of one connection (on the connection: C types have no weakrefs
    to spare for a side table, but subclasses have a __dict__)."""

    __slots__ = ("db", "schema", "timeout_ms", "zeroed")

    def __init__(self, db: str, timeout: float) -> None:
        self.db = db
        self.timeout_ms = int(timeout * 1000)
        self.zeroed = False
        self.schema: dict[str, TableInfo | None] = {}


_ZEROED: list[weakref.ref[Any]] = []  # connections whose busy timeout this execution set to 0


def _restore_timeouts() -> None:
    for ref in _ZEROED:
        conn = ref()
        if conn is None:
            continue
        state = conn._plait
        state.zeroed = False
        try:
            sqlite3.Connection.execute(conn, f"PRAGMA busy_timeout = {state.timeout_ms}")
        except sqlite3.Error:
            pass
    _ZEROED.clear()


_step.on_deactivate(_restore_timeouts)
_SCHEMAS: dict[str, dict[str, TableInfo | None]] = {}  # db -> table -> what it is
_step.on_activate(_SCHEMAS.clear)


def _schema_of(conn: Any, db: str) -> Any:
    tables = _SCHEMAS.setdefault(db, {})

    def schema(table: str) -> TableInfo | None:
        if table not in tables:
            tables[table] = _lookup(conn, table)
        return tables[table]

    return schema


def _rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    cursor = sqlite3.Connection.cursor(conn, sqlite3.Cursor)
    try:
        return sqlite3.Cursor.execute(cursor, sql, params).fetchall()
    finally:
        cursor.close()


def _lookup(conn: Any, table: str) -> TableInfo | None:
    """The table's primary key, unique constraints, foreign keys, and whether it is plain."""
    try:
        kinds = _rows(conn, "SELECT type FROM sqlite_master WHERE lower(name) = ? OR "
                            "(type = 'trigger' AND lower(tbl_name) = ?)", (table, table))
        if not kinds:
            return None  # not created yet (or a temporary table): the whole table
        if any(kind in ("view", "trigger") for (kind,) in kinds):
            return TableInfo(plain=False)
        quoted = '"' + table.replace('"', '""') + '"'
        columns = _rows(conn, f"PRAGMA table_info({quoted})")
        pk = tuple(name.lower() for _, name, *_rest, order in
                   sorted((c for c in columns if c[5]), key=lambda c: c[5]))
        unique = []
        for _seq, index, is_unique, origin, *_ in _rows(conn, f"PRAGMA index_list({quoted})"):
            if is_unique and origin != "pk":
                quoted_index = '"' + index.replace('"', '""') + '"'
                cols = tuple(str(c[2]).lower() for c in
                             _rows(conn, f"PRAGMA index_info({quoted_index})"))
                if cols and cols != pk:
                    unique.append(cols)
        parents = tuple(sorted({str(fk[2]).lower() for fk in
                                _rows(conn, f"PRAGMA foreign_key_list({quoted})")}))
        cascades = set()
        for (other,) in _rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table'"):
            quoted_other = '"' + other.replace('"', '""') + '"'
            for fk in _rows(conn, f"PRAGMA foreign_key_list({quoted_other})"):
                if str(fk[2]).lower() == table and (fk[5] != "NO ACTION" or
                                                     fk[6] != "NO ACTION"):
                    cascades.add(other.lower())
        return TableInfo(pk or None, tuple(unique), parents, tuple(sorted(cascades)))
    except sqlite3.Error:
        return None  # locked or odd: coarse is sound


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def _prepare(conn: Any) -> _State | None:
    """The connection's state, once the running actor may take steps; else None."""
    if not sql_step.may_step():
        return None
    state: _State | None = conn.__dict__.get("_plait")
    if state is None:
        return None
    if not state.zeroed:
        try:
            sqlite3.Connection.execute(conn, "PRAGMA busy_timeout = 0")
        except sqlite3.Error:
            pass
        state.zeroed = True
        _ZEROED.append(weakref.ref(conn))
    return state


def _run(conn: Any, state: _State, sql: str, params: Any, call: Any) -> Any:
    """One statement under plait: a step, then the real call, retried while it is busy."""
    db = state.db
    conn_id = id(conn)
    schema = _schema_of(conn, db)
    lock: sql_step.DatabaseLock | None = None
    try:
        while True:
            parsed = sql_step.statement(db, sql, params, conn_id=conn_id, dialect="sqlite",
                                        schema=schema,
                                        in_transaction=_in_transaction(conn, sql))
            try:
                result = call()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if lock is None:
                    lock = sql_step.DatabaseLock(db, conn_id, f"the lock on {db[7:]}")
                sql_step.wait(lock, f"{sql_step.statement_text(sql, params)} waits for "
                                    f"the database lock")
                continue
            if parsed is not None and parsed.kind == "outside":
                _SCHEMAS.pop(db, None)
            return result
    finally:
        if not conn.in_transaction:
            sql_step.ended(conn_id)
        sql_step.released(db)


def _in_transaction(conn: Any, sql: str) -> bool:
    """Will the statement run inside a transaction? sqlite3 opens one by itself: before
    INSERT, UPDATE, DELETE and REPLACE when ``isolation_level`` is not None (the legacy
    mode), always when ``autocommit`` is False (3.12+)."""
    if conn.in_transaction:
        return True
    autocommit = getattr(conn, "autocommit", -1)
    if autocommit is True:
        return False
    if autocommit is False:
        return True
    if conn.isolation_level is None:
        return False
    parsed = parse(sql, "sqlite")
    return parsed.kind == "query" and any(use.write for use in parsed.uses)


class Cursor(sqlite3.Cursor):
    """A sqlite3 cursor whose statements are steps during an execution."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        state = _prepare(self.connection)
        if state is None:
            return super().execute(sql, parameters)
        return _run(self.connection, state, sql, parameters,
                    lambda: super(Cursor, self).execute(sql, parameters))

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Any:
        state = _prepare(self.connection)
        if state is None:
            return super().executemany(sql, seq_of_parameters)
        rows = list(seq_of_parameters)
        # one step; the footprint of each row's parameters
        return _run_many(self.connection, state, sql, rows,
                         lambda: super(Cursor, self).executemany(sql, rows))

    def executescript(self, sql_script: str, /) -> Any:
        state = _prepare(self.connection)
        if state is None:
            return super().executescript(sql_script)
        return _run(self.connection, state, sql_script, None,
                    lambda: super(Cursor, self).executescript(sql_script))


def _run_many(conn: Any, state: _State, sql: str, rows: list[Any], call: Any) -> Any:
    if len(rows) == 1:
        return _run(conn, state, sql, rows[0], call)
    return _run(conn, state, sql, None, call)  # keyed by its tables: sound, coarse


_CURSOR_CLASSES: dict[type, type] = {}


def _cursor_class(factory: type) -> type:
    if issubclass(factory, Cursor):
        return factory
    found = _CURSOR_CLASSES.get(factory)
    if found is None:
        found = _CURSOR_CLASSES[factory] = type(factory.__name__, (factory, Cursor),
                                                {"__module__": factory.__module__})
    return found


class Connection(sqlite3.Connection):
    """A sqlite3 connection whose statements, commits and rollbacks are steps."""

    _plait: _State

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        timeout = kwargs.get("timeout", args[0] if args else 5.0)
        self._plait = _State(_identity(database, bool(kwargs.get("uri", False))),
                             float(timeout))

    def cursor(self, factory: Any = Cursor) -> Any:
        return super().cursor(_cursor_class(factory))

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)

    def commit(self) -> None:
        state = _prepare(self)
        if state is None or not self.in_transaction:
            return super().commit()
        _run(self, state, "COMMIT", None, super().commit)
        return None

    def rollback(self) -> None:
        state = _prepare(self)
        if state is None or not self.in_transaction:
            return super().rollback()
        _run(self, state, "ROLLBACK", None, super().rollback)
        return None

    def close(self) -> None:
        state = _prepare(self)
        if state is not None and self.in_transaction:
            _run(self, state, "ROLLBACK", None, super().close)  # closing rolls back
            return None
        super().close()
        if state is not None:
            sql_step.ended(id(self))
            sql_step.released(state.db)
        return None


def _hooked(driver_connection: Any) -> bool:
    return isinstance(driver_connection, Connection)


_CONNECTION_CLASSES: dict[type, type] = {}


def _connection_class(factory: type) -> type:
    if issubclass(factory, Connection):
        return factory
    found = _CONNECTION_CLASSES.get(factory)
    if found is None:
        found = _CONNECTION_CLASSES[factory] = type(
            factory.__name__, (Connection, factory), {"__module__": factory.__module__})
    return found


def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
    """``sqlite3.connect``, making a connection whose statements plait sees."""
    factory = kwargs.pop("factory", None)
    if len(args) >= 4:  # timeout, detect_types, isolation_level, check_same_thread, factory
        factory = args[4] if len(args) > 4 else factory
        args = args[:4] + args[5:]
    chosen = _connection_class(factory if factory is not None else sqlite3.Connection)
    return _REAL_CONNECT(database, *args, factory=chosen, **kwargs)


connect.__doc__ = _REAL_CONNECT.__doc__


def install() -> None:
    """Make ``sqlite3.connect`` plait's (kept: connections outlive explorations)."""
    import sqlite3.dbapi2

    if _hooked not in sql_step.DRIVER_HOOKS:
        sql_step.DRIVER_HOOKS.append(_hooked)

    sqlite3.connect = connect
    sqlite3.dbapi2.connect = connect


def uninstall() -> None:
    import sqlite3.dbapi2

    sqlite3.connect = _REAL_CONNECT
    sqlite3.dbapi2.connect = _REAL_CONNECT
