"""Django support: check the test database is visible to workers, and describe it to them.

The parent describes its Django state as a plain dict (``snapshot``); a worker process
configures Django once from it (``setup``) and, around each call, points its connections at
the parent's test databases and applies the settings the test overrode (``applied``).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from plait.concurrent._errors import DatabaseNotVisible


class SettingsNotSent(UserWarning):
    """An overridden Django setting could not be pickled, so worker processes do not see it."""


def configured() -> bool:
    if "django.conf" not in sys.modules:
        return False
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

    return bool(settings.configured)


def check_visible(backend: str) -> None:
    """Raise DatabaseNotVisible if the calls could not see what the test wrote."""
    if not configured():
        return
    from django.db import connections  # type: ignore[import-untyped,unused-ignore]

    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block:
            raise DatabaseNotVisible(
                f"the test's connection to database {conn.alias!r} is inside a transaction, so "
                "the concurrent calls, which use their own connections, cannot see what the "
                "test wrote and may wait forever on its locks. Run the test outside a "
                "transaction: subclass django.test.TransactionTestCase instead of TestCase, or "
                "use @pytest.mark.django_db(transaction=True) with pytest-django (and do not "
                "call plait inside transaction.atomic())."
            )


def snapshot() -> dict[str, Any] | None:
    """What a worker process needs to use the parent's Django project and test databases."""
    if not configured():
        return None
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
    from django.db import connections  # type: ignore[import-untyped,unused-ignore]

    base, overrides, deleted = _layers(settings._wrapped)
    module = getattr(base, "SETTINGS_MODULE", None)
    configure: dict[str, Any] | None = None
    if module is None:  # settings.configure(...): send the values the test process passed
        configure = {k: v for k, v in vars(base).items() if k.isupper()}
        _check_picklable(configure, "settings.configure()")
    sendable: dict[str, Any] = {}
    for name, value in overrides.items():
        try:
            pickle.dumps(value)
        except Exception as exc:
            warnings.warn(
                f"overridden Django setting {name} cannot be sent to worker processes ({exc}); "
                "they keep its value from the settings module",
                SettingsNotSent,
                stacklevel=4,
            )
        else:
            sendable[name] = value
    from django.test import utils as test_utils  # type: ignore[import-untyped,unused-ignore]

    return {
        "key": module or pickle.dumps(sorted(configure.items()) if configure else None),
        "settings_module": module,
        "configure": configure,
        "test_environment": hasattr(test_utils._TestState, "saved_data"),
        "databases": {conn.alias: dict(conn.settings_dict) for conn in connections.all()},
        "open_aliases": [
            conn.alias
            for conn in connections.all(initialized_only=True)
            if conn.connection is not None and not _in_memory(conn)
        ],
        "in_memory": [conn.alias for conn in connections.all() if _in_memory(conn)],
        "overrides": sendable,
        "deleted": sorted(deleted),
    }


def _in_memory(conn: Any) -> bool:
    return conn.vendor == "sqlite" and bool(conn.is_in_memory_db())


def _layers(wrapped: Any) -> tuple[Any, dict[str, Any], set[str]]:
    """Split override_settings layers off the configured settings: (base, overrides, deleted)."""
    from django.conf import Settings, UserSettingsHolder  # type: ignore[import-untyped,unused-ignore]

    layers = []
    while isinstance(wrapped, UserSettingsHolder) and isinstance(
        wrapped.default_settings, Settings | UserSettingsHolder
    ):
        layers.append(wrapped)
        wrapped = wrapped.default_settings
    overrides: dict[str, Any] = {}
    deleted: set[str] = set()
    for layer in reversed(layers):  # innermost override last, so it wins
        for name, value in vars(layer).items():
            if name.isupper():
                overrides[name] = value
                deleted.discard(name)
        for name in layer._deleted:
            overrides.pop(name, None)
            deleted.add(name)
    return wrapped, overrides, deleted


def _check_picklable(values: dict[str, Any], where: str) -> None:
    for name, value in values.items():
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise TypeError(
                f"Django setting {name} from {where} cannot be pickled for worker processes "
                f"({exc}); use a settings module (DJANGO_SETTINGS_MODULE) or backend='threads'"
            ) from exc


def _refuse_in_memory(alias: str) -> Any:
    def connect() -> None:
        raise DatabaseNotVisible(
            f"database {alias!r} is an in-memory SQLite database of the test process, which "
            f"worker processes cannot see. Give it a file: DATABASES[{alias!r}]['TEST'] = "
            "{'NAME': '/some/path/test.sqlite3'}, or use backend='threads'."
        )

    return connect


# --- in the worker process ----------------------------------------------------------------


def setup(state: dict[str, Any]) -> None:
    """Configure Django once, the way the parent process did."""
    import os

    import django  # type: ignore[import-untyped,unused-ignore]
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

    if settings.configured:
        pass  # the parent's __main__ script, loaded first, configured Django itself
    elif state["settings_module"]:
        os.environ["DJANGO_SETTINGS_MODULE"] = state["settings_module"]
    else:
        settings.configure(**state["configure"])
    django.setup()
    if state["test_environment"]:
        from django.test.utils import setup_test_environment  # type: ignore[import-untyped,unused-ignore]

        setup_test_environment()


@contextlib.contextmanager
def applied(state: dict[str, Any]) -> Iterator[None]:
    """Use the parent's test databases and overridden settings for the duration of one call."""
    from django.db import connections  # type: ignore[import-untyped,unused-ignore]
    from django.test.utils import override_settings  # type: ignore[import-untyped,unused-ignore]

    for alias, settings_dict in state["databases"].items():
        if alias in connections:
            conn = connections[alias]
            if conn.settings_dict != settings_dict:
                conn.close()
                conn.settings_dict.clear()
                conn.settings_dict.update(settings_dict)
            if alias in state["in_memory"]:
                conn.connect = _refuse_in_memory(alias)  # only calls that use it fail
            else:
                vars(conn).pop("connect", None)
    override = None
    if state["overrides"] or state["deleted"]:
        override = override_settings(**state["overrides"])
        override.enable()
        from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

        for name in state["deleted"]:
            delattr(settings, name)
    try:
        yield
    finally:
        if override is not None:
            override.disable()
        connections.close_all()


def connect(state: dict[str, Any]) -> None:
    """Open the connections the test uses before the barrier, so calls start on equal terms."""
    from django.db import connections  # type: ignore[import-untyped,unused-ignore]

    for alias in state["open_aliases"]:
        if alias in connections:
            connections[alias].ensure_connection()
