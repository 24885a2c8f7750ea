"""SQLAlchemy: worker processes make their own engines; nothing is inherited from the test."""

from __future__ import annotations

import os

import pytest
import sa_targets
from sqlalchemy import text

from plait.concurrent import call_concurrently


@pytest.fixture
def engine(monkeypatch, tmp_path, request):  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = f"postgresql+psycopg://{server.user}@/postgres?host={server.socket_dir}&port={server.port}"
    else:
        url = f"sqlite:///{tmp_path / 'sa.sqlite3'}"
    monkeypatch.setenv("PLAIT_SA_URL", url)  # workers get the test's environment
    yield sa_targets.engine()
    sa_targets.engine().dispose()


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_each_worker_process_has_its_own_engine_and_connection(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:  # the test process holds a pooled connection
        parent_backend = conn.execute(text("select pg_backend_pid()")).scalar()
        results = call_concurrently(3, sa_targets.backend_pid, backend="processes")
    backends = [r.unwrap()[0] for r in results]
    pids = {r.unwrap()[2] for r in results}
    assert len(set(backends)) == 3 and parent_backend not in backends
    assert len(pids) == 3 and os.getpid() not in pids


@pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("backend", ["threads", "processes"])
def test_writes_from_all_calls_land(engine, backend: str) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("create table items (value integer)"))
    results = call_concurrently(4, sa_targets.insert, 1, backend=backend)
    assert all(r.ok for r in results), [r.traceback for r in results]
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from items")).scalar() == 4
        conn.execute(text("drop table items"))
        conn.commit()
