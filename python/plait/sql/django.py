"""Django's database connections: an execute wrapper on every connection.

Django's ``connection.execute_wrapper(wrapper)`` sees each statement a connection runs.
plait puts its wrapper innermost on every connection (of every thread: Django's
connections are per thread), by wrapping ``CursorWrapper._execute_with_wrappers`` once at
the first execution after Django is imported; it then runs after the user's own wrappers,
just before the driver.

Django's sqlite3 and PostgreSQL (psycopg 3) backends already run on drivers plait sees
(``plait.sql.sqlite``, ``plait.sql.psycopg``), whose hooks take the step and know about
locks; for those the wrapper stays out. For any other backend the wrapper is the step.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from plait.sql import _step as sql_step

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql",
             "oracle": "oracle", "microsoft": "tsql"}
_ORIGINAL: list[Any] = []


def identity(db: Any) -> str:
    settings = db.settings_dict
    if db.vendor == "sqlite":
        return "sqlite:" + os.path.realpath(str(settings.get("NAME") or ""))
    return (f"{db.vendor}:{settings.get('HOST') or ''}:{settings.get('PORT') or ''}/"
            f"{settings.get('NAME') or ''}")


def _wrapper(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    db = context["connection"]
    if not sql_step.active() or sql_step.driver_hooked(db.connection):
        return execute(sql, params, many, context)
    name = identity(db)
    sql_step.statement(name, sql, None if many else params, conn_id=id(db),
                       dialect=_DIALECTS.get(db.vendor, db.vendor),
                       in_transaction=db.in_atomic_block or not db.get_autocommit())
    try:
        return execute(sql, params, many, context)
    finally:
        sql_step.released(name)


def install() -> None:
    """Wrap every connection's statements (once)."""
    if _ORIGINAL:
        return
    from django.db.backends.utils import CursorWrapper  # type: ignore[import-untyped]

    original = CursorWrapper._execute_with_wrappers
    _ORIGINAL.append(original)

    def _execute_with_wrappers(self: Any, sql: str, params: Any, many: bool,
                               executor: Any) -> Any:
        return original(self, sql, params, many, functools.partial(_wrapper, executor))

    CursorWrapper._execute_with_wrappers = _execute_with_wrappers
