"""Settings of the test project. Paths and the PostgreSQL socket come from the environment,
set by tests/concurrent/conftest.py (worker processes inherit them)."""

import os

SECRET_KEY = "plait-tests-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["djangoapp.seats"]

_SQLITE_DIR = os.environ.get("PLAIT_TEST_SQLITE_DIR", "/tmp")

DATABASES = {
    # SQLite needs nothing; its test database is a file so that worker processes can see it.
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_SQLITE_DIR, "plait.sqlite3"),
        "TEST": {"NAME": os.path.join(_SQLITE_DIR, "test_plait.sqlite3")},
        "OPTIONS": {"timeout": 20},
    },
    # In memory: worker processes cannot see it (the tests check the error says so).
    "memory": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    # The throwaway server started by conftest.py, on a private unix socket.
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "plait",
        "USER": "plait",
        "HOST": os.environ.get("PLAIT_TEST_PG_HOST", "/nonexistent"),
        "PORT": os.environ.get("PLAIT_TEST_PG_PORT", "5432"),
    },
}

PLAIT_GREETING = "from settings.py"
