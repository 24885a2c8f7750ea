"""plait's PostgreSQL fixtures and ``reset_tables``, used the way a user's test suite would."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

import plait
from plait.sql import reset_tables

SCHEMA = """
    CREATE TABLE seats (id serial PRIMARY KEY, left_ int NOT NULL);
    CREATE TABLE bookings (id serial PRIMARY KEY, seat int REFERENCES seats (id), who text);
    INSERT INTO seats (left_) VALUES (1);
"""

_NAMES: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_its_own_empty_database(plait_postgres_db, round_: int) -> None:  # type: ignore[no-untyped-def]
    _NAMES.append(plait_postgres_db.name)
    assert len(set(_NAMES)) == len(_NAMES)  # a new database each time
    with psycopg.connect(plait_postgres_db.dsn, autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE t (x int)")  # the next test must not see it


def test_urls_work_for_asyncpg_and_sqlalchemy(plait_postgres_db) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import asyncpg
    import sqlalchemy

    async def ask() -> str:
        conn = await asyncpg.connect(plait_postgres_db.url())
        try:
            return str(await conn.fetchval("SELECT current_database()"))
        finally:
            await conn.close()

    assert asyncio.run(ask()) == plait_postgres_db.name
    engine = sqlalchemy.create_engine(plait_postgres_db.url("postgresql+psycopg"))
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == \
            plait_postgres_db.name
    engine.dispose()


_RUNS: list[tuple[int, int, int]] = []


class _Box:
    value = 0


@plait.explore(races="ignore")
def _starts_from_the_script(db) -> None:  # type: ignore[no-untyped-def]
    db.reset(SCHEMA)
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        (booking,) = conn.execute(
            "INSERT INTO bookings (seat, who) VALUES (1, 'ann') RETURNING id").fetchone()
        conn.execute("UPDATE seats SET left_ = left_ - 1 WHERE id = 1")
        left, booked = conn.execute(
            "SELECT left_, (SELECT count(*) FROM bookings) FROM seats").fetchone()
    _RUNS.append((booking, left, booked))
    box = _Box()  # two threads: several executions

    def arrive() -> None:
        box.value = box.value + 1

    threads = [threading.Thread(target=arrive) for _ in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_reset_makes_every_execution_start_from_the_scripts_rows(plait_postgres_db) -> None:  # type: ignore[no-untyped-def]
    _RUNS.clear()
    result = _starts_from_the_script.explore(plait_postgres_db)
    assert result.exhausted and result.executions >= 2
    # every execution: the first booking (ids restart), the one seat taken, one booking
    assert set(_RUNS) == {(1, 0, 1)}


def test_recreate_drops_what_the_code_under_test_added(plait_postgres_db) -> None:  # type: ignore[no-untyped-def]
    plait_postgres_db.reset(SCHEMA)
    with psycopg.connect(plait_postgres_db.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE seats ADD COLUMN extra int")
    plait_postgres_db.reset(SCHEMA, recreate=True)
    with psycopg.connect(plait_postgres_db.dsn, autocommit=True) as conn:
        columns = conn.execute("SELECT column_name FROM information_schema.columns "
                               "WHERE table_name = 'seats' ORDER BY ordinal_position")
        assert [c for (c,) in columns] == ["id", "left_"]


def test_a_transaction_left_open_does_not_stop_the_next_reset(plait_postgres_db) -> None:  # type: ignore[no-untyped-def]
    plait_postgres_db.reset(SCHEMA)
    left_open = psycopg.connect(plait_postgres_db.dsn)  # an execution that never committed
    left_open.execute("UPDATE seats SET left_ = 0")
    plait_postgres_db.reset(SCHEMA)
    with psycopg.connect(plait_postgres_db.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT left_ FROM seats").fetchone() == (1,)
    assert left_open.closed or left_open.broken or _is_gone(left_open)


def _is_gone(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


SQLITE_SCHEMA = """
    CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, balance INTEGER NOT NULL);
    INSERT INTO accounts (balance) VALUES (100);
"""


def test_reset_tables_on_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    seen = []
    for _ in range(3):
        reset_tables(path, SQLITE_SCHEMA)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE accounts SET balance = balance - 30")
            row = conn.execute("INSERT INTO accounts (balance) VALUES (5) RETURNING id")
            seen.append((row.fetchone()[0], conn.execute(
                "SELECT balance FROM accounts WHERE id = 1").fetchone()[0]))
        conn.close()
    assert seen == [(2, 70)] * 3


def test_reset_tables_names_what_it_accepts() -> None:
    with pytest.raises(TypeError, match="cannot tell which database 42 is"):
        reset_tables(42, SCHEMA)
    with pytest.raises(TypeError, match="in-memory database"):
        reset_tables(":memory:", SCHEMA)


def test_missing_server_binaries_fail_the_test_with_what_to_install(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_uses_pg="""
        def test_needs_postgres(plait_postgres_db):
            pass
    """)
    env_bin = "/nonexistent/pg/bin"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120,
        env={**_env(), "PLAIT_PG_BIN": env_bin}, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"PLAIT_PG_BIN={env_bin} has no initdb" in output
    assert "apt-get install postgresql" in output
    assert "skipped" not in output and "1 error" in output


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_a_users_suite_takes_the_fixtures_from_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_booking="""
        import psycopg
        import plait

        SCHEMA = '''
            CREATE TABLE seats (id int PRIMARY KEY, left_ int NOT NULL);
            INSERT INTO seats VALUES (1, 3);
        '''

        @plait.explore()
        def test_one_booking(plait_postgres_db):
            plait_postgres_db.reset(SCHEMA)
            with psycopg.connect(plait_postgres_db.dsn, autocommit=True) as conn:
                conn.execute("UPDATE seats SET left_ = left_ - 1")
                assert conn.execute("SELECT left_ FROM seats").fetchone() == (2,)

        def test_server(plait_postgres):
            assert plait_postgres.dsn().startswith("host=")
    """)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
