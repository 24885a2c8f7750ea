"""SQL statements as steps, against real databases (PostgreSQL, SQLite), with no change to
the code under test.

Every statement the code under test runs is a scheduling point whose footprint is parsed
from its text (``_footprint``: tables, rows pinned by a primary key, locks, transactions,
DDL). Drivers feed one entry point, ``plait.sql._step.statement``; the hooks:

- ``sqlite3`` (``plait.sql.sqlite``): ``sqlite3.connect`` makes connections plait sees,
  installed when the pytest plugin loads (and by ``plait run``), so module-level
  connections and fixtures' are covered; ``SQLITE_BUSY`` blocks the actor until a
  statement ends on the database.

``reset_tables(db, script)`` makes each execution start from the same rows; the pytest
fixtures ``plait_postgres`` (a throwaway server) and ``plait_postgres_db`` (a fresh database
per test) come with plait's plugin (``plait.sql.postgres``).

For another driver's hook (asyncpg, ...), call, just before the driver sends a statement::

    from plait.sql import _step
    _step.statement(db, sql, params, conn_id=id(conn), dialect="postgres",
                    schema=None,             # table -> TableInfo (primary key...); None: tables
                    in_transaction=None,     # True when the driver is inside a transaction
                    isolation=None)          # the level it began the transaction with
    ...  # the real call
    _step.released(db)                       # after it: waiters on this database try again

It returns None outside an execution (cost: one global lookup). Waiting for a lock in the
server: ``_step.wait(_step.DatabaseLock(db, conn_id, "the lock ..."), what)`` in a thread
actor (an asyncio task waits on its socket instead).
"""

from __future__ import annotations

from plait.sql.reset import reset_tables

_INSTALLED = [False]


def install() -> None:
    """Put plait's driver hooks in place (cheap: no driver is imported that was not)."""
    if _INSTALLED[0]:
        return
    _INSTALLED[0] = True
    from plait.sql import sqlite
    from plait.world import _step

    sqlite.install()
    _step.on_activate(_drivers)


def _drivers() -> None:
    """At each execution's start: hook the drivers the program has imported by now."""
    import sys

    if "psycopg" in sys.modules:
        from plait.sql import psycopg

        psycopg.install()
    if "sqlalchemy" in sys.modules:
        from plait.sql import sqlalchemy

        sqlalchemy.install()
    if "django" in sys.modules:
        from plait.sql import django

        django.install()


__all__ = ["install", "reset_tables"]
