"""Booking a seat, twice: the racy way (read, then write) and the fixed way (row lock)."""

import time

from django.conf import settings
from django.db import connections, transaction

from djangoapp.seats.models import Booking, Seat

PAYMENT_CHECK = 0.2  # seconds: stands for a call to a payment provider between read and write


def reserve_seat(seat_id, customer, using="default"):
    """Racy: two buyers can both read the seat as free, then both book it."""
    seat = Seat.objects.using(using).get(pk=seat_id)
    if seat.holder is not None:
        return False
    time.sleep(PAYMENT_CHECK)
    seat.holder = customer
    seat.save(using=using)
    Booking.objects.using(using).create(seat=seat, customer=customer)
    return True


def reserve_seat_locked(seat_id, customer, using="default"):
    """Fixed: the row lock (SELECT ... FOR UPDATE) makes other buyers wait, then see it taken."""
    with transaction.atomic(using=using):
        seat = Seat.objects.using(using).select_for_update().get(pk=seat_id)
        if seat.holder is not None:
            return False
        time.sleep(PAYMENT_CHECK)
        seat.holder = customer
        seat.save(using=using)
        Booking.objects.using(using).create(seat=seat, customer=customer)
        return True


def cancel(seat_id, using="default"):
    Booking.objects.using(using).filter(seat_id=seat_id).delete()
    return Seat.objects.using(using).filter(pk=seat_id).update(holder=None)


def seat_count(using="default"):
    return Seat.objects.using(using).count()


def database_name(using="default"):
    return connections[using].settings_dict["NAME"]


def email_backend():
    return settings.EMAIL_BACKEND


def greeting():
    return getattr(settings, "PLAIT_GREETING", "<deleted>")
