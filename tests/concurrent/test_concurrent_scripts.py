"""plait.concurrent from outside pytest: a script's own functions, settings.configure(), and
scripts/ensure-postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_script(tmp_path: Path, source: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_functions_of_a_script_run_in_worker_processes(tmp_path: Path) -> None:
    out = _run_script(
        tmp_path,
        """
        import os
        from plait.concurrent import call_concurrently

        def square(x):
            return x * x, os.getpid()

        if __name__ == "__main__":
            results = call_concurrently(3, square, 4, backend="processes")
            values = [r.unwrap() for r in results]
            assert {v[0] for v in values} == {16} and os.getpid() not in {v[1] for v in values}
            print("ok")
        """,
    )
    assert out.strip() == "ok"


def test_django_configured_with_settings_configure(tmp_path: Path) -> None:
    out = _run_script(
        tmp_path,
        f"""
        import django
        from django.conf import settings
        from plait.concurrent import call_concurrently

        settings.configure(
            DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                    "NAME": {str(tmp_path / "db.sqlite3")!r}}}}},
            PLAIT_GREETING="from configure()",
        )
        django.setup()

        def greeting_and_tables():
            from django.db import connection
            return settings.PLAIT_GREETING, "t" in connection.introspection.table_names()

        if __name__ == "__main__":
            from django.db import connection
            with connection.cursor() as cursor:
                cursor.execute("create table t (x integer)")
            connection.close()
            results = call_concurrently(2, greeting_and_tables, backend="processes")
            assert [r.unwrap() for r in results] == [("from configure()", True)] * 2, results
            print("ok")
        """,
    )
    assert out.strip() == "ok"


def test_ensure_postgres_is_idempotent() -> None:
    # the binaries are there (the PostgreSQL tests need them): it must not reinstall anything
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-postgres")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "binaries found" in proc.stdout


def test_postgres_tests_fail_loudly_when_the_server_cannot_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_TEST_")}
    env["PLAIT_PG_BIN"] = "/nonexistent/postgresql/bin"
    test = ["tests/concurrent/test_concurrent_sqlalchemy.py", "-k", "own_engine"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", *test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "plait_postgres: PostgreSQL could not be started" in output
    assert "PLAIT_PG_BIN=/nonexistent/postgresql/bin has no initdb" in output
    assert "skipped" not in output
