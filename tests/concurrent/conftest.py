"""Django and PostgreSQL for the tests of plait.concurrent, confined to this directory.

Django is configured here (not through DJANGO_SETTINGS_MODULE in the environment, which would
leak into other test directories and their subprocesses) with the project in ``djangoapp/``.
The PostgreSQL server starts only when a collected test uses the ``postgres`` database, and
a server that cannot start fails those tests loudly: they are never skipped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from pgserver import PostgresServer, PostgresUnavailable  # noqa: E402

_SQLITE_DIR = tempfile.mkdtemp(prefix="plait-sqlite-")
atexit.register(shutil.rmtree, _SQLITE_DIR, True)
_POSTGRES = PostgresServer()  # not started yet; its socket path is known now
atexit.register(_POSTGRES.stop)
os.environ["PLAIT_TEST_SQLITE_DIR"] = _SQLITE_DIR
os.environ["PLAIT_TEST_PG_HOST"] = str(_POSTGRES.socket_dir)
os.environ["PLAIT_TEST_PG_PORT"] = str(_POSTGRES.port)


def _configure_django() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        if getattr(settings, "SETTINGS_MODULE", None) != "djangoapp.settings":
            raise RuntimeError(
                "tests/concurrent needs Django configured with djangoapp.settings, but this "
                f"session already configured {settings.SETTINGS_MODULE!r}; run them separately"
            )
        return
    previous = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = "djangoapp.settings"
    try:
        django.setup()
    finally:
        if previous is None:
            del os.environ["DJANGO_SETTINGS_MODULE"]
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = previous


_configure_django()


def _uses_postgres(item: pytest.Item) -> bool:
    for marker in item.iter_markers("django_db"):
        databases = marker.kwargs.get("databases") or ()
        if databases == "__all__" or "postgres" in databases:
            return True
    databases = getattr(getattr(item, "cls", None), "databases", ())
    return databases == "__all__" or "postgres" in databases or "postgres_server" in getattr(
        item, "fixturenames", ()
    )


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The throwaway server; a failure to start it fails the test, with the reason."""
    if not _POSTGRES.started:
        try:
            _POSTGRES.start()
        except PostgresUnavailable as exc:
            pytest.fail(f"PostgreSQL could not be started for the tests: {exc}", pytrace=False)
    return _POSTGRES


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, request: pytest.FixtureRequest
) -> None:
    """pytest-django's hook before it creates the test databases: start PostgreSQL if needed."""
    if any(_uses_postgres(item) for item in request.session.items):
        request.getfixturevalue("postgres_server")
