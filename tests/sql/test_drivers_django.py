"""Django's connections: statements through the ORM's connection are steps.

Django is configured in a pytest subprocess (configuring it in this session would change
every other test directory: pytest-django acts on any configured Django)."""

from __future__ import annotations

import pytest

PROGRAM = '''
import threading

import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}},
    INSTALLED_APPS=[], USE_TZ=True)
django.setup()

import pytest
from django.db import connection, connections

import plait
from plait.errors import InterleavingFailure


def fresh():
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS stock")
        cursor.execute("CREATE TABLE stock (id integer PRIMARY KEY, n integer NOT NULL)")
        cursor.execute("INSERT INTO stock VALUES (1, 2)")


def take(atomic):
    def run():
        try:
            with connection.cursor() as cursor:
                if atomic:
                    cursor.execute("UPDATE stock SET n = n - 1 WHERE id = %s", [1])
                else:
                    cursor.execute("SELECT n FROM stock WHERE id = %s", [1])
                    (n,) = cursor.fetchone()
                    cursor.execute("UPDATE stock SET n = %s WHERE id = %s", [n - 1, 1])
        finally:
            connections.close_all()  # this thread's connection
    return run


def program(atomic):
    def body():
        try:  # each execution opens its connections anew: the same steps every time
            fresh()
            workers = [threading.Thread(target=take(atomic)) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            with connection.cursor() as cursor:
                cursor.execute("SELECT n FROM stock WHERE id = 1")
                assert cursor.fetchone() == (0,)
        finally:
            connections.close_all()
    return body


# Django computes a connection's features with queries once per process: do that first,
# or the first execution would run statements the next ones do not
program(True)()


def test_lost_update():
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(strategy="dpor")(program(False)).explore()
    report = caught.value.report
    assert "diverged" not in report
    assert "SELECT n FROM stock WHERE id = ? (1,) at test_django_program.py:" in report
    assert "| cursor.execute(\\"UPDATE stock SET n = %s WHERE id = %s\\", [n - 1, 1])" in report


def test_atomic_update():
    result = plait.explore(strategy="dpor", stop_on_first=False)(program(True)).explore()
    assert result.exhausted and result.failure is None and result.executions >= 2
'''


def test_django_connection_statements_are_steps(pytester: pytest.Pytester) -> None:
    db = pytester.path / "django.db"
    pytester.makepyfile(test_django_program=f"DB = {str(db)!r}\n" + PROGRAM)
    result = pytester.runpytest_subprocess("-q", "-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
