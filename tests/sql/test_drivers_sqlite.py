"""sqlite3 through plait: two threads with their own connections on a real database file.

No annotation in the code under test: ``sqlite3.connect`` is plait's once the plugin
loaded, so the connections below (and the module-level one) are seen.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure

EARLY = sqlite3.connect(":memory:")  # made at import, before any exploration


def run_threads(*targets: Callable[[], None]) -> None:
    workers = [threading.Thread(target=t) for t in targets]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def fresh(path: Path, *rows: tuple[int, int]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE IF EXISTS accounts")
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.executemany("INSERT INTO accounts VALUES (?, ?)", rows or [(1, 100)])
    conn.commit()
    conn.close()


def balance(path: Path, account: int = 1) -> int:
    conn = sqlite3.connect(path)
    (value,) = conn.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()
    conn.close()
    return int(value)


def read_then_write(path: Path, account: int = 1) -> Callable[[], None]:
    def withdraw() -> None:
        conn = sqlite3.connect(path)
        (value,) = conn.execute("SELECT balance FROM accounts WHERE id = ?",
                                (account,)).fetchone()
        conn.execute("UPDATE accounts SET balance = ? WHERE id = ?", (value - 10, account))
        conn.commit()
        conn.close()
    return withdraw


def atomic(path: Path, account: int = 1) -> Callable[[], None]:
    def withdraw() -> None:
        conn = sqlite3.connect(path)
        conn.execute("UPDATE accounts SET balance = balance - 10 WHERE id = ?", (account,))
        conn.commit()
        conn.close()
    return withdraw


def test_lost_update_between_two_connections_is_found_with_the_statements(
        tmp_path: Path) -> None:
    db = tmp_path / "bank.db"

    def body() -> None:
        fresh(db)
        run_threads(read_then_write(db), read_then_write(db))
        assert balance(db) == 80

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(body).explore()
    report = caught.value.report
    assert "Thread-1 (withdraw): SELECT balance FROM accounts WHERE id = ? (1,) at " \
           "tests/sql/test_drivers_sqlite.py:" in report
    assert "UPDATE accounts SET balance = ? WHERE id = ? (90, 1) at " \
           "tests/sql/test_drivers_sqlite.py:" in report
    assert "| conn.execute(\"UPDATE accounts SET balance = ? WHERE id = ?\"" in report


def test_atomic_update_fix_is_exhausted_over_both_orders(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"

    def body() -> None:
        fresh(db)
        run_threads(atomic(db), atomic(db))
        assert balance(db) == 80

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.failure is None
    assert result.executions >= 2
    assert not result.races


def test_second_writer_waits_for_the_first_ones_commit(tmp_path: Path) -> None:
    """SQLite's writer lock: the other connection's UPDATE is busy until the commit; plait
    blocks that thread, runs the holder, and retries; nothing waits in real time."""
    db = tmp_path / "bank.db"
    order: list[str] = []

    def slow_writer() -> None:
        conn = sqlite3.connect(db)
        conn.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
        order.append("first updated")
        conn.commit()
        conn.close()

    def body() -> None:
        fresh(db)
        order.clear()
        run_threads(slow_writer, atomic(db))
        assert balance(db) == 80

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.failure is None and result.executions >= 2, \
        result.summary()


def test_different_rows_explore_one_execution(tmp_path: Path) -> None:
    db = tmp_path / "bank.db"

    def body() -> None:
        fresh(db, (1, 100), (2, 100))
        conn_a = sqlite3.connect(db, isolation_level=None)  # autocommit: no writer lock held
        conn_b = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

        def one(conn: sqlite3.Connection, account: int) -> Callable[[], None]:
            def run() -> None:
                (value,) = conn.execute("SELECT balance FROM accounts WHERE id = ?",
                                        (account,)).fetchone()
                conn.execute("UPDATE accounts SET balance = ? WHERE id = ?",
                             (value - 10, account))
            return run

        conn_a.close()
        conn_a = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        run_threads(one(conn_a, 1), one(conn_b, 2))
        conn_a.close()
        conn_b.close()

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.distinct == 1, result.summary()


def test_busy_cycle_is_reported_as_a_deadlock_naming_both_transactions(
        tmp_path: Path) -> None:
    """Both read in a transaction (a shared lock each), then both write: the first to
    write waits at COMMIT for the other's shared lock, the other waits for its writer
    lock. SQLite would time out after 5 s; plait reports the cycle."""
    db = tmp_path / "bank.db"

    def reader_writer() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchall()
        conn.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
        conn.execute("COMMIT")
        conn.close()

    def body() -> None:
        fresh(db)
        run_threads(reader_writer, reader_writer)

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor", races="ignore")(body).explore()
    assert isinstance(caught.value.__cause__, Deadlock)
    report = caught.value.report
    assert "waits for the lock on" in report and "bank.db, held by Thread-" in report
    assert "'s transaction (SELECT balance FROM accounts WHERE id = 1" in report


def test_connection_made_before_the_exploration_is_seen() -> None:
    EARLY.execute("CREATE TABLE IF NOT EXISTS early (id INTEGER PRIMARY KEY, n INTEGER)")
    EARLY.execute("DELETE FROM early")
    EARLY.commit()
    steps: list[str] = []

    def body() -> None:
        EARLY.execute("INSERT INTO early VALUES (1, 1)")
        EARLY.rollback()

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dfs")(lambda: (body(), steps.append("x"), 1 / 0)).explore()
    assert "INSERT INTO early VALUES (1, 1) at tests/sql/test_drivers_sqlite.py:" in \
        caught.value.report
    assert "ROLLBACK at tests/sql/test_drivers_sqlite.py:" in caught.value.report


def test_outside_an_exploration_the_driver_is_untouched(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", factory=sqlite3.Connection)
    assert isinstance(conn, sqlite3.Connection)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()


def test_sqlalchemy_on_a_driver_connection_plait_does_not_hook_steps_through_its_events(
        tmp_path: Path) -> None:
    """An engine whose ``creator`` makes the C sqlite3 connection itself (as any driver
    plait has no hook for): SQLAlchemy's events are the steps, at the user's lines."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from plait.sql.sqlite import _REAL_CONNECT

    db = tmp_path / "bank.db"
    engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: _REAL_CONNECT(
        db, isolation_level=None, check_same_thread=False))
    def withdraw() -> None:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT balance FROM accounts WHERE id = 1")).scalar_one()
            conn.execute(text("UPDATE accounts SET balance = :b WHERE id = 1"),
                         {"b": value - 10})

    def body() -> None:
        fresh(db)
        run_threads(withdraw, withdraw)
        assert balance(db) == 80

    # once before exploring: the dialect's first-connect queries and the statement cache's
    # first compilations (with their locks) happen in no execution
    fresh(db)
    withdraw()
    try:
        with pytest.raises(InterleavingFailure) as caught:
            plait.explore(strategy="dpor")(body).explore()
    finally:
        engine.dispose()
    report = caught.value.report
    assert "SELECT balance FROM accounts WHERE id = 1 at tests/sql/test_drivers_sqlite.py:" \
        in report
    assert "UPDATE accounts SET balance = ? WHERE id = 1 (90,) at tests/sql/" in report
    assert "| value = conn.execute(text(" in report
