"""The Django tests' own settings: DJANGO_SETTINGS_MODULE=djangoapp.settings comes from the
environment of the subprocess that runs them, as in a Django project's CI."""

from __future__ import annotations

import os

import pytest


def _uses_postgres(item: pytest.Item) -> bool:
    for marker in item.iter_markers("django_db"):
        databases = marker.kwargs.get("databases") or ()
        if databases == "__all__" or "postgres" in databases:
            return True
    databases = getattr(getattr(item, "cls", None), "databases", ())
    return (
        databases == "__all__"
        or "postgres" in databases
        or "postgres_server" in getattr(item, "fixturenames", ())
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, request: pytest.FixtureRequest
) -> None:
    """pytest-django's hook before it creates the test databases: point them at this
    session's temporary directory and PostgreSQL server (started only if a test needs it).

    pytest-django imports the settings before any conftest runs, so the paths that
    tests/concurrent/conftest.py chose are filled in here.
    """
    from django.db import connections

    sqlite_dir = os.environ["PLAIT_TEST_SQLITE_DIR"]
    default = connections["default"].settings_dict
    default["NAME"] = os.path.join(sqlite_dir, "plait.sqlite3")
    default["TEST"]["NAME"] = os.path.join(sqlite_dir, "test_plait.sqlite3")
    if any(_uses_postgres(item) for item in request.session.items):
        server = request.getfixturevalue("postgres_server")
        postgres = connections["postgres"].settings_dict
        postgres["HOST"], postgres["PORT"] = str(server.socket_dir), str(server.port)
