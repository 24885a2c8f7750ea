"""SQL statements as steps, against real databases (PostgreSQL, SQLite).

``reset_tables(db, script)`` makes each execution start from the same rows; the pytest
fixtures ``plait_postgres`` (a throwaway server) and ``plait_postgres_db`` (a fresh database
per test) come with plait's plugin (``plait.sql.postgres``).
"""

from plait.sql.reset import reset_tables

__all__ = ["reset_tables"]
