"""SQLAlchemy engines: statements are steps through its events API, sync and asyncio.

plait listens, on the ``Engine`` class (so every engine, made before the exploration or
inside it, and the sync engine inside every ``AsyncEngine``), to ``before_cursor_execute``,
``after_cursor_execute``, ``handle_error``, ``commit`` and ``rollback``. The listeners are
added at the first execution after SQLAlchemy is imported and stay (outside an execution
they return at once).

When the DB-API connection underneath is one plait already sees at the driver (sqlite3,
psycopg's sync connections, or a driver another hook registered with
``plait.sql._step.DRIVER_HOOKS``), the driver's hook takes the step (it also knows when a
statement waits for a lock) and these listeners stay out of the way. Otherwise the event is
the step: in a thread a scheduling point; inside an asyncio task (the asyncio engine runs
the sync events in the task, through greenlets) the footprint joins the task step.
"""

from __future__ import annotations

import os
from typing import Any

from plait.sql import _step as sql_step

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql",
             "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle"}
_LISTENING = [False]


def identity(conn: Any) -> str:
    """The database's identity as the driver hooks name it (a file's real path for SQLite,
    host, port and name for a server)."""
    url = conn.engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        info = conn.connection.info  # per DB-API connection, kept by SQLAlchemy
        found = info.get("plait_db")
        if found is None:
            found = info["plait_db"] = _sqlite_file(conn.connection.dbapi_connection,
                                                    url.database or "")
        return str(found)
    host = url.host or url.query.get("host") or ""
    if isinstance(host, tuple):
        host = host[0]
    port = url.port or url.query.get("port") or 5432
    scheme = "postgresql" if backend == "postgresql" else backend
    return f"{scheme}:{host}:{port}/{url.database}"


def _sqlite_file(dbapi: Any, database: str) -> str:
    """The file the connection has open (an engine with a ``creator`` names none)."""
    import sqlite3

    if isinstance(dbapi, sqlite3.Connection):
        try:
            for _seq, name, path in sqlite3.Connection.execute(dbapi, "PRAGMA database_list"):
                if name == "main":
                    database = path or ""
        except sqlite3.Error:
            pass
    if database in ("", ":memory:"):
        return f"sqlite:memory:{id(dbapi)}"  # nobody else sees it
    return "sqlite:" + os.path.realpath(database)


def _driver_sees(conn: Any) -> bool:
    try:
        driver = conn.connection.driver_connection
    except Exception:
        return False
    return sql_step.driver_hooked(driver)


def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
            executemany: bool) -> None:
    if not sql_step.active() or _driver_sees(conn):
        return
    dialect = _DIALECTS.get(conn.dialect.name, conn.dialect.name)
    params = None if executemany else parameters
    sql_step.statement(identity(conn), statement, params, conn_id=id(conn.connection),
                       dialect=dialect, in_transaction=conn.in_transaction())


def _after(conn: Any, *_args: Any) -> None:
    if sql_step.active() and not _driver_sees(conn):
        sql_step.released(identity(conn))


def _handle_error(context: Any) -> None:
    conn = context.connection
    if conn is not None:
        _after(conn)


def _ending(sql: str) -> Any:
    def listener(conn: Any) -> None:
        if not sql_step.active() or _driver_sees(conn):
            return
        dialect = _DIALECTS.get(conn.dialect.name, conn.dialect.name)
        db = identity(conn)
        sql_step.statement(db, sql, None, conn_id=id(conn.connection), dialect=dialect)
        sql_step.ended(id(conn.connection))
        sql_step.released(db)
    return listener


def install() -> None:
    """Listen on every engine (once)."""
    if _LISTENING[0]:
        return
    _LISTENING[0] = True
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)
    event.listen(Engine, "handle_error", _handle_error)
    event.listen(Engine, "commit", _ending("COMMIT"))
    event.listen(Engine, "rollback", _ending("ROLLBACK"))
