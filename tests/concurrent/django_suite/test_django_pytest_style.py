"""Django: a real race found in djangoapp (oversold seat), on SQLite and PostgreSQL.

pytest-django style here; Django's own TestCase classes are in test_concurrent_django_unittest.py.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from djangoapp.seats import services
from djangoapp.seats.models import Booking, Seat

from plait.concurrent import (
    DatabaseNotVisible,
    SettingsNotSent,
    call_concurrently,
    make_concurrent_calls,
)

BACKENDS = ["threads", "processes"]


def _database(alias: str, transaction: bool = True):  # type: ignore[no-untyped-def]
    return pytest.param(
        alias, marks=pytest.mark.django_db(transaction=transaction, databases=[alias]), id=alias
    )


DATABASES = [_database("default"), _database("postgres")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("db", DATABASES)
def test_read_then_write_oversells_the_seat(db: str, backend: str) -> None:
    seat = Seat.objects.using(db).create(number=7)
    results = call_concurrently(
        5, services.reserve_seat, seat.pk, "buyer", using=db, backend=backend
    )
    assert all(r.ok for r in results), [r.traceback for r in results if not r.ok]
    winners = sum(r.value for r in results)
    assert winners > 1, "the race was not found: every call but one should have seen the seat taken"
    assert Booking.objects.using(db).filter(seat=seat).count() == winners
    assert results.start_spread < 0.5  # loose; the exact figures are in benches/


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("db", [_database("postgres")])
def test_select_for_update_fixes_it_on_postgres(db: str, backend: str) -> None:
    seat = Seat.objects.using(db).create(number=7)
    results = call_concurrently(
        5, services.reserve_seat_locked, seat.pk, "buyer", using=db, backend=backend
    )
    assert sum(r.ok and r.value for r in results) == 1
    assert Booking.objects.using(db).filter(seat=seat).count() == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("db", DATABASES)
def test_calls_use_the_test_database_and_see_its_rows(db: str, backend: str) -> None:
    Seat.objects.using(db).bulk_create([Seat(number=n) for n in range(3)])
    test_name = connections[db].settings_dict["NAME"]
    assert "test_" in str(test_name)
    results = make_concurrent_calls(
        (services.database_name, {"using": db}),
        (services.seat_count, {"using": db}),
        backend=backend,
    )
    assert [r.unwrap() for r in results] == [test_name, 3]


@pytest.mark.django_db(transaction=True)
def test_workers_see_settings_the_test_overrode(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLAIT_GREETING = "overridden by the test"
    results = call_concurrently(2, services.greeting, backend="processes")
    assert [r.value for r in results] == ["overridden by the test"] * 2
    del settings.PLAIT_GREETING
    assert call_concurrently(1, services.greeting, backend="processes")[0].value == "<deleted>"


def test_unpicklable_overrides_are_named_in_a_warning(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLAIT_GREETING = threading.Lock()
    with pytest.warns(SettingsNotSent, match="PLAIT_GREETING"):
        results = call_concurrently(1, services.greeting, backend="processes")
    assert results[0].value == "from settings.py"


def test_workers_run_in_djangos_test_environment() -> None:
    results = call_concurrently(1, services.email_backend, backend="processes")
    assert results[0].value == "django.core.mail.backends.locmem.EmailBackend"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("db", [_database("default", False), _database("postgres", False)])
def test_uncommitted_test_data_is_a_clear_error(db: str, backend: str) -> None:
    Seat.objects.using(db).create(number=7)
    with pytest.raises(DatabaseNotVisible, match=r"transaction=True|TransactionTestCase"):
        call_concurrently(2, services.seat_count, using=db, backend=backend)


@pytest.mark.django_db(transaction=True, databases=["memory"])
def test_in_memory_sqlite_works_with_threads_and_is_a_clear_error_with_processes() -> None:
    Seat.objects.using("memory").create(number=1)
    results = call_concurrently(2, services.seat_count, using="memory", backend="threads")
    assert [r.value for r in results] == [1, 1]
    results = call_concurrently(2, services.seat_count, using="memory", backend="processes")
    assert all(isinstance(r.exception, DatabaseNotVisible) for r in results)
    assert "in-memory SQLite" in str(results[0].exception)
    with pytest.raises(DatabaseNotVisible, match="in-memory SQLite"):
        results[0].reraise()
    # calls that do not touch the in-memory database are not affected by it
    assert call_concurrently(1, services.seat_count, backend="processes")[0].ok
