"""Fixtures for the tests of plait.concurrent: the PostgreSQL server, temp paths.

The Django tests live in ``django_suite/`` and run in a pytest subprocess of their own (see
test_concurrent_django_suite.py), configured as a Django user would: DJANGO_SETTINGS_MODULE
and pytest-django. Configuring Django inside the main session would change it for every
other test directory (pytest-django acts on any configured Django, in pytester runs too).
The PostgreSQL server is plait's own ``plait_postgres`` fixture (plait.sql.postgres): it
starts only when a collected test needs it, and a server that cannot start fails those tests
loudly: they are never skipped.
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

from plait.sql.postgres import PostgresServer  # noqa: E402

_SQLITE_DIR = tempfile.mkdtemp(prefix="plait-sqlite-")
atexit.register(shutil.rmtree, _SQLITE_DIR, True)
os.environ["PLAIT_TEST_SQLITE_DIR"] = _SQLITE_DIR

DJANGO_SUITE = "PLAIT_DJANGO_SUITE"  # set in the subprocess that runs django_suite/
collect_ignore = [] if os.environ.get(DJANGO_SUITE) else ["django_suite"]


@pytest.fixture(scope="session")
def postgres_server(plait_postgres: PostgresServer) -> PostgresServer:
    """The throwaway server; a failure to start it fails the test, with the reason."""
    return plait_postgres
