"""Every execution starts from the same rows: ``reset_tables(db, script)``.

An explored test's body runs once per execution, with the same fixture values each time, so
state the body does not recreate leaks from one execution into the next (the second
execution would see the first one's booked seat). ``reset_tables`` is the one-liner for the
common case, called first thing in the body::

    SCHEMA = '''
        CREATE TABLE seats (id int PRIMARY KEY, left_ int NOT NULL);
        INSERT INTO seats VALUES (1, 1);
    '''

    @plait.explore()
    def test_booking(plait_postgres_db):
        plait.sql.reset_tables(plait_postgres_db, SCHEMA)
        ...

The first call drops the tables the script creates and runs the whole script; later calls
with the same script empty those tables (``TRUNCATE ... RESTART IDENTITY CASCADE`` on
PostgreSQL; ``DELETE`` and the ``sqlite_sequence`` rows on SQLite) and run only its other
statements (the ``INSERT`` s), which costs a fraction of recreating them. ``recreate=True``
drops and recreates every time (for code under test that changes the schema).

The reset runs on a private connection, as one step that writes the outside world: its
statements are not steps of their own, and it waits for nothing of the code under test.
A connection that an earlier execution left inside a transaction (holding locks on these
tables) is terminated: it belongs to an execution that is over.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Target = Any  # a PostgresDatabase, a libpq DSN / postgresql:// URL, a SQLite path, an Engine


@dataclass
class _Plan:
    drop: str  # drops the script's tables, last created first
    truncate: str  # empties them (and restarts their sequences)
    data: list[str]  # the script's statements other than CREATE TABLE / CREATE INDEX ...
    tables: list[str]


@dataclass
class _Target:
    kind: str  # "postgres" or "sqlite"
    key: str  # a DSN or an absolute path


_PLANS: dict[tuple[str, str], _Plan] = {}  # (dialect, script) -> plan
_DONE: set[tuple[str, str, str]] = set()  # (kind, key, script) reset once already
_CONNECTIONS: dict[str, Any] = {}  # key -> private connection


def reset_tables(target: Target, script: str, *, recreate: bool = False) -> None:
    """Make the tables ``script`` creates hold exactly the rows it inserts.

    ``target``: the ``plait_postgres_db`` fixture (or any object with a ``dsn``), a libpq
    DSN or ``postgresql://`` URL, a SQLite database file (a path, ``sqlite:///path``), or a
    SQLAlchemy engine for either. ``script``: ``CREATE TABLE`` statements (and indexes,
    constraints...) followed by the statements that fill them.
    """
    resolved = _resolve(target)
    plan = _plan(resolved.kind, script)
    done = (resolved.kind, resolved.key, script)
    first = recreate or done not in _DONE or not plan.tables
    if first:
        statements = [plan.drop, script] if plan.tables else [script]
    else:
        statements = [plan.truncate, *plan.data]
    what = f"reset tables {', '.join(plan.tables)}" if plan.tables else "reset the database"
    from plait.world import OUTSIDE, Effect, external_call

    with external_call(what, [Effect(OUTSIDE, True, race=False)]):
        if resolved.kind == "postgres":
            _run_postgres(resolved.key, statements)
        else:
            _run_sqlite(resolved.key, statements, [] if first else plan.tables)
    _DONE.add(done)


def forget(key: str) -> None:
    """A database is dropped: close the private connection to it and forget its resets."""
    conn = _CONNECTIONS.pop(key, None)
    if conn is not None:
        conn.close()
    for done in [d for d in _DONE if d[1] == key]:
        _DONE.discard(done)


@atexit.register
def _close_all() -> None:
    for key in list(_CONNECTIONS):
        forget(key)


# -- what the target is -----------------------------------------------------------------------
def _resolve(target: Target) -> _Target:
    dsn = getattr(target, "dsn", None)
    if isinstance(dsn, str):  # PostgresDatabase
        return _Target("postgres", dsn)
    url = getattr(target, "url", None)
    if url is not None and hasattr(url, "render_as_string"):  # a SQLAlchemy engine
        return _from_sqlalchemy(url)
    if isinstance(target, Path):
        return _Target("sqlite", os.path.abspath(target))
    if isinstance(target, str):
        if target.startswith(("postgresql://", "postgres://")) or "dbname=" in target \
                or "host=" in target:
            return _Target("postgres", target)
        if target.startswith("sqlite:///"):
            return _Target("sqlite", os.path.abspath(target[len("sqlite:///"):]))
        if target and target != ":memory:" and not target.startswith(("sqlite:", "mysql")):
            return _Target("sqlite", os.path.abspath(target))
    raise TypeError(
        f"plait.sql.reset_tables: cannot tell which database {target!r} is; give the "
        "plait_postgres_db fixture, a PostgreSQL DSN or postgresql:// URL, a SQLite database "
        "file path (an in-memory database lives and dies with its connection: recreate it in "
        "the test instead), or a SQLAlchemy engine")


def _from_sqlalchemy(url: Any) -> _Target:
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise TypeError("plait.sql.reset_tables: an in-memory SQLite engine has no file to "
                            "reset; recreate its tables in the test, or use a file database")
        return _Target("sqlite", os.path.abspath(url.database))
    if backend == "postgresql":
        query = dict(url.query)
        parts = {"host": url.host or query.get("host"), "port": url.port or query.get("port"),
                 "user": url.username, "password": url.password, "dbname": url.database}
        return _Target("postgres", " ".join(f"{k}={v}" for k, v in parts.items() if v))
    raise TypeError(f"plait.sql.reset_tables: {backend} databases are not supported "
                    "(PostgreSQL and SQLite are)")


# -- the plan: which tables, which statements ----------------------------------------------------
def _plan(kind: str, script: str) -> _Plan:
    cached = _PLANS.get((kind, script))
    if cached is not None:
        return cached
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:  # pragma: no cover - sqlglot is in plait's sql extra
        raise ImportError("plait.sql.reset_tables needs sqlglot: pip install 'plait[sql]'") \
            from None
    dialect = "postgres" if kind == "postgres" else "sqlite"
    tables: list[str] = []
    data: list[str] = []
    for text in _split(script, dialect):
        try:
            parsed = sqlglot.parse_one(text, read=dialect)
        except sqlglot.errors.ParseError as exc:
            raise ValueError(f"plait.sql.reset_tables: cannot parse {text!r}: {exc}") from None
        if isinstance(parsed, exp.Create):
            kind_of = str(parsed.args.get("kind") or "").upper()
            if kind_of == "TABLE":
                table = parsed.find(exp.Table)
                if table is not None:
                    tables.append(table.sql(dialect=dialect))
            continue  # schema: made once, kept by later resets
        if isinstance(parsed, (exp.Drop, exp.Alter)) or type(parsed).__name__ in (
                "AlterTable", "Comment", "Command"):
            continue
        data.append(text)
    if kind == "postgres":
        drop = f"DROP TABLE IF EXISTS {', '.join(reversed(tables))} CASCADE" if tables else ""
        truncate = f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE" if tables else ""
    else:
        drop = "; ".join(f"DROP TABLE IF EXISTS {t}" for t in reversed(tables))
        truncate = "; ".join(f"DELETE FROM {t}" for t in tables)
    plan = _Plan(drop, truncate, data, tables)
    _PLANS[(kind, script)] = plan
    return plan


def _split(script: str, dialect: str) -> list[str]:
    """The script's statements, each as written (sqlglot's tokenizer finds the semicolons)."""
    from sqlglot.dialects.dialect import Dialect

    tokens = Dialect.get_or_raise(dialect).tokenize(script)
    statements: list[str] = []
    start: int | None = None
    end = 0
    for token in tokens:
        if token.token_type.name == "SEMICOLON":
            if start is not None:
                statements.append(script[start:end + 1])
            start = None
            continue
        if start is None:
            start = token.start
        end = token.end
    if start is not None:
        statements.append(script[start:end + 1])
    return [s.strip() for s in statements if s.strip()]


# -- running it -------------------------------------------------------------------------------------
def _private(key: str, connect: Callable[[], Any]) -> Any:
    conn = _CONNECTIONS.get(key)
    if conn is None or getattr(conn, "closed", False):
        conn = _CONNECTIONS[key] = connect()
    return conn


def _run_postgres(dsn: str, statements: list[str]) -> None:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in plait's sql extra
        raise ImportError("plait.sql.reset_tables on PostgreSQL needs psycopg: "
                          "pip install 'plait[sql]'") from None
    conn = _private(dsn, lambda: psycopg.connect(dsn, autocommit=True))
    script = ";\n".join(s for s in statements if s)
    for attempt in (1, 2):
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(script.encode())
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == 2:
                raise
            _terminate_leftovers(conn)


def _terminate_leftovers(conn: Any) -> None:
    """Sessions left idle inside a transaction by an execution that is over: their locks
    stop the reset, and nobody will ever finish them."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")


def _run_sqlite(path: str, statements: list[str], emptied: list[str]) -> None:
    conn = _private(path, lambda: sqlite3.connect(path, timeout=5, isolation_level=None,
                                                  check_same_thread=False))
    if emptied and conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        names = ", ".join("'" + t.strip('"').replace("'", "''") + "'" for t in emptied)
        # AUTOINCREMENT counts from 1 again, before the script's rows go in
        statements = [statements[0], f"DELETE FROM sqlite_sequence WHERE name IN ({names})",
                      *statements[1:]]
    script = ";\n".join(s for s in statements if s)
    conn.executescript(f"BEGIN IMMEDIATE;\n{script};\nCOMMIT;")
