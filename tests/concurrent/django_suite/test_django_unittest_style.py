"""Django's own test classes: TransactionTestCase works, TestCase gets a clear error."""

from __future__ import annotations

from django.test import TestCase, TransactionTestCase, override_settings
from djangoapp.seats import services
from djangoapp.seats.models import Seat

from plait.concurrent import DatabaseNotVisible, call_concurrently, make_concurrent_calls


class ReserveAndCancelTests(TransactionTestCase):
    databases = {"default", "postgres"}

    def test_race_found_on_both_databases_with_worker_processes(self) -> None:
        for db in ("default", "postgres"):
            seat = Seat.objects.using(db).create(number=1)
            calls = [
                (services.reserve_seat, (seat.pk, f"buyer {i}"), {"using": db}) for i in range(4)
            ]
            results = make_concurrent_calls(*calls, backend="processes")
            self.assertGreater(sum(r.unwrap() for r in results), 1, db)

    def test_fixed_on_postgres(self) -> None:
        seat = Seat.objects.using("postgres").create(number=1)
        results = call_concurrently(
            4, services.reserve_seat_locked, seat.pk, "b", using="postgres", backend="processes"
        )
        self.assertEqual(sum(r.unwrap() for r in results), 1)

    @override_settings(PLAIT_GREETING="from override_settings")
    def test_override_settings_is_seen_by_workers(self) -> None:
        results = call_concurrently(2, services.greeting, backend="processes")
        self.assertEqual([r.value for r in results], ["from override_settings"] * 2)


class PlainTestCaseTests(TestCase):
    databases = {"default", "postgres"}

    def test_clear_error_inside_the_test_transaction(self) -> None:
        Seat.objects.create(number=1)
        with self.assertRaisesMessage(DatabaseNotVisible, "TransactionTestCase"):
            call_concurrently(2, services.seat_count, backend="processes")
