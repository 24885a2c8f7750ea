"""SQLAlchemy code as an application would write it: one engine per process, made on first use.

Worker processes are reused from test to test, so module state outlives a test: the engine
is kept per URL, because each test points PLAIT_SA_URL at its own database.
"""

import os

from sqlalchemy import create_engine, text

_engines = {}


def engine():
    url = os.environ["PLAIT_SA_URL"]
    if url not in _engines:
        _engines[url] = create_engine(url)
    return _engines[url]


def backend_pid():
    """(PostgreSQL server process serving this connection, id of this process's engine)."""
    with engine().connect() as conn:
        return conn.execute(text("select pg_backend_pid()")).scalar(), id(engine()), os.getpid()


def insert(value):
    with engine().begin() as conn:
        conn.execute(text("insert into items (value) values (:v)"), {"v": value})
    return value
