"""psycopg and SQLAlchemy on a real PostgreSQL (plait's ``plait_postgres_db`` fixture):
statements are steps with no annotation, and a statement waiting for a row lock blocks its
thread until the holder's transaction ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure

SEATS = """
    CREATE TABLE seats (id int PRIMARY KEY, left_ int NOT NULL);
    INSERT INTO seats VALUES (1, 1), (2, 1);
"""


def run_threads(*targets: Callable[[], None]) -> None:
    workers = [threading.Thread(target=t) for t in targets]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def left(db: Any, seat: int = 1) -> int:
    with psycopg.connect(db.dsn) as conn:
        row = conn.execute("SELECT left_ FROM seats WHERE id = %s", (seat,)).fetchone()
    assert row is not None
    return int(row[0])


def book(db: Any, seat: int = 1, lock: str = "") -> Callable[[], None]:
    def run() -> None:
        with psycopg.connect(db.dsn) as conn:
            row = conn.execute(f"SELECT left_ FROM seats WHERE id = %s{lock}",
                               (seat,)).fetchone()
            assert row is not None
            if row[0] > 0:
                conn.execute("UPDATE seats SET left_ = %s WHERE id = %s", (row[0] - 1, seat))
            conn.commit()
    return run


def test_psycopg_oversold_seat_is_found(plait_postgres_db: Any) -> None:
    db = plait_postgres_db

    # the final left_ is 0 either way: the bookings that went through tell
    def counting() -> None:
        db.reset(SEATS)
        done: list[str] = []

        def booking() -> None:
            with psycopg.connect(db.dsn) as conn:
                (n,) = conn.execute("SELECT left_ FROM seats WHERE id = 1").fetchone() or (0,)
                if n > 0:
                    conn.execute("UPDATE seats SET left_ = %s WHERE id = 1", (n - 1,))
                    done.append("booked")
                conn.commit()

        run_threads(booking, booking)
        assert len(done) <= 1, "the one seat was sold twice"

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(counting).explore()
    report = caught.value.report
    assert "the confirming replay diverged" not in report
    assert "SELECT left_ FROM seats WHERE id = 1 at tests/sql/test_drivers_postgres.py:" \
        in report
    assert "UPDATE seats SET left_ = %s WHERE id = 1 (0,) at tests/sql/" in report


def test_for_update_fix_blocks_the_second_buyer_and_is_exhausted(
        plait_postgres_db: Any) -> None:
    db = plait_postgres_db

    def body() -> None:
        db.reset(SEATS)
        done: list[str] = []

        def booking() -> None:
            with psycopg.connect(db.dsn) as conn:
                (n,) = conn.execute("SELECT left_ FROM seats WHERE id = 1 FOR UPDATE"
                                    ).fetchone() or (0,)
                if n > 0:
                    conn.execute("UPDATE seats SET left_ = %s WHERE id = 1", (n - 1,))
                    done.append("booked")
                conn.commit()

        run_threads(booking, booking)
        assert len(done) == 1

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.failure is None and result.executions >= 2, \
        result.summary()
    assert not result.races


def test_different_seats_explore_one_execution(plait_postgres_db: Any) -> None:
    db = plait_postgres_db

    def body() -> None:
        db.reset(SEATS)
        run_threads(book(db, 1), book(db, 2))

    result = plait.explore(strategy="dpor", stop_on_first=False)(body).explore()
    assert result.exhausted and result.distinct == 1, result.summary()


def test_opposite_order_updates_are_reported_as_a_deadlock(plait_postgres_db: Any) -> None:
    db = plait_postgres_db

    def transfer(first: int, second: int) -> Callable[[], None]:
        def run() -> None:
            with psycopg.connect(db.dsn) as conn:
                conn.execute("UPDATE seats SET left_ = left_ - 1 WHERE id = %s", (first,))
                conn.execute("UPDATE seats SET left_ = left_ + 1 WHERE id = %s", (second,))
                conn.commit()
        return run

    def body() -> None:
        db.reset(SEATS)
        run_threads(transfer(1, 2), transfer(2, 1))

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor", races="ignore")(body).explore()
    assert isinstance(caught.value.__cause__, Deadlock), caught.value.report
    report = caught.value.report
    assert report.count("waits for a lock in the server, held by Thread-") == 2
    assert "'s transaction (UPDATE seats SET left_ = left_ - 1 WHERE id = %s (1,)" in report
    assert "'s transaction (UPDATE seats SET left_ = left_ - 1 WHERE id = %s (2,)" in report
    assert left(db, 1) == 1 and left(db, 2) == 1  # cancelled: nothing half done is left


def test_serialization_failure_surfaces_as_itself(plait_postgres_db: Any) -> None:
    db = plait_postgres_db

    def bump() -> None:
        with psycopg.connect(db.dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
            (n,) = conn.execute("SELECT left_ FROM seats WHERE id = 1").fetchone() or (0,)
            conn.execute("UPDATE seats SET left_ = %s WHERE id = 1", (n + 1,))
            conn.commit()

    def body() -> None:
        db.reset(SEATS)
        run_threads(bump, bump)

    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor", races="ignore")(body).explore()
    assert isinstance(caught.value.__cause__, psycopg.errors.SerializationFailure), \
        caught.value.report


def test_sqlalchemy_oversold_seat_is_found_and_for_update_fixes_it(
        plait_postgres_db: Any) -> None:
    """The engine is made before the exploration (as a module-level engine would be): its
    connections are psycopg's, whose statements are steps. NullPool: a pool keeps the
    connections one execution opened for the next, which would then run fewer steps
    (plait reports that as nondeterminism)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    db = plait_postgres_db
    engine = create_engine(db.url("postgresql+psycopg"), poolclass=NullPool)
    with engine.connect():  # the dialect's first-connect queries, once, before exploring
        pass

    def program(lock: str) -> Callable[[], None]:
        def body() -> None:
            db.reset(SEATS)
            sold: list[int] = []

            def buy() -> None:
                with engine.begin() as conn:
                    n = conn.execute(text(f"SELECT left_ FROM seats WHERE id = :id{lock}"),
                                     {"id": 1}).scalar_one()
                    if n > 0:
                        conn.execute(text("UPDATE seats SET left_ = :n WHERE id = :id"),
                                     {"n": n - 1, "id": 1})
                        sold.append(1)

            run_threads(buy, buy)
            assert len(sold) <= 1, "oversold"
        return body

    try:
        with pytest.raises(InterleavingFailure) as caught:
            plait.explore(strategy="dpor")(program("")).explore()
        report = caught.value.report
        assert "SELECT left_ FROM seats WHERE id = %(id)s {'id': 1} at tests/sql/" \
            "test_drivers_postgres.py:" in report
        assert "| n = conn.execute(text(" in report  # the user's line, not SQLAlchemy's
        result = plait.explore(strategy="dpor", stop_on_first=False)(
            program(" FOR UPDATE")).explore()
        assert result.exhausted and result.failure is None and result.executions >= 2, \
            result.summary()
    finally:
        engine.dispose()


def test_sqlalchemy_asyncio_engine_over_psycopg_finds_the_oversold_seat(
        plait_postgres_db: Any) -> None:
    """The asyncio engine over psycopg's AsyncConnection: the statements' footprints join
    the task steps that send them."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    db = plait_postgres_db

    async def body() -> None:
        engine = create_async_engine(db.url("postgresql+psycopg"), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE seats SET left_ = 1 WHERE id = 1"))
            sold: list[int] = []

            async def buy() -> None:
                async with engine.begin() as conn:
                    n = (await conn.execute(text("SELECT left_ FROM seats WHERE id = 1"))
                         ).scalar_one()
                    if n > 0:
                        await conn.execute(text("UPDATE seats SET left_ = :n WHERE id = 1"),
                                           {"n": n - 1})
                        sold.append(1)

            await asyncio.gather(buy(), buy())
            assert len(sold) <= 1, "oversold"
        finally:
            await engine.dispose()

    db.reset(SEATS)
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(body).explore()
    report = caught.value.report  # (found by the real I/O's order; its replay may differ)
    assert "(SELECT left_ FROM seats WHERE id = 1 at tests/sql/test_drivers_postgres.py:" \
        in report
    assert "(UPDATE seats SET left_ = %(n)s WHERE id = 1 {'n': 0} at tests/sql/" in report
