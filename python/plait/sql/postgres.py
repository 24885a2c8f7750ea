"""A throwaway PostgreSQL server for tests, started from the binaries on the machine.

``plait_postgres`` (a session fixture of plait's pytest plugin) is a :class:`PostgresServer`:
initdb into a temporary directory, the server listening on a unix socket only (no TCP port,
so it never clashes with another server), fsync off. ``plait_postgres_db`` (a function
fixture) is a fresh :class:`PostgresDatabase` on it, dropped after the test. initdb refuses
to run as root, so as root the server runs as an unprivileged user (``postgres`` if it
exists, else ``nobody``). ``PLAIT_PG_BIN`` names the binaries' directory; otherwise the
newest ``/usr/lib/postgresql/*/bin`` (Debian's package ``postgresql``) or ``initdb`` on the
PATH. Missing binaries are an error naming what to install, never a skip.

Stdlib only at import: the plugin's fixtures import this module when a test asks for them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

HINT = ("install PostgreSQL's server binaries (Debian/Ubuntu: `apt-get install postgresql`, or "
        "run plait's scripts/ensure-postgres) or set PLAIT_PG_BIN to the directory holding "
        "initdb and pg_ctl")


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start; the message says why."""


def find_bin() -> Path:
    """The directory holding initdb and pg_ctl: PLAIT_PG_BIN, Debian's newest, or the PATH's."""
    chosen = os.environ.get("PLAIT_PG_BIN")
    if chosen:  # set: use it or fail, so a broken choice is never covered up
        if not (Path(chosen) / "initdb").exists():
            raise PostgresUnavailable(f"PLAIT_PG_BIN={chosen} has no initdb; {HINT}")
        return Path(chosen)

    def newest_first(path: str) -> list[int]:
        return [int(x) for x in Path(path).parent.name.split(".") if x.isdigit()]

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=newest_first, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl) found; {HINT}")


def _url(user: str, host: str, port: int, dbname: str, scheme: str) -> str:
    return f"{scheme}://{quote(user)}@/{quote(dbname)}?host={quote(host)}&port={port}"


class PostgresServer:
    """One throwaway server. ``start()`` runs initdb and pg_ctl; ``stop()`` removes it all.

    Connect with ``dsn()`` (libpq key=value, for psycopg), ``url()`` (``postgresql://``, for
    asyncpg; ``url(scheme="postgresql+psycopg")`` for SQLAlchemy) or ``connect_kwargs()``.
    """

    port = 5432  # only names the socket file: the server listens on no TCP port
    user = "plait"  # the superuser role initdb creates (trust auth on the private socket)
    # Lock waits that form a cycle are found by plait first; the server's own detector is a
    # backstop that answers in 0.2 s instead of a second.
    settings = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                "max_connections=200", "deadlock_timeout=200ms")

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="plait-pg-"))
        self.socket_dir = self.base / "sock"
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.started = False
        self.bin_dir: Path | None = None
        self._databases = itertools.count(1)

    @property
    def host(self) -> str:
        return str(self.socket_dir)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres", scheme: str = "postgresql") -> str:
        return _url(self.user, self.host, self.port, dbname, scheme)

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "database": dbname}

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        if shutil.which("setpriv"):
            uid, gid = self.owner.pw_uid, self.owner.pw_gid
            return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]
        return ["runuser", "-u", self.owner.pw_name, "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        proc = subprocess.run(self._as_owner(argv), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"PostgreSQL {what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                f"{proc.stdout}{proc.stderr}{log}")

    def start(self) -> None:
        if self.started:
            return
        bin_dir = find_bin()
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.owner = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise PostgresUnavailable(
                    "running as root and no 'postgres' or 'nobody' user to run the server as")
            self.socket_dir.mkdir(exist_ok=True)
            os.chmod(self.base, 0o755)
            for path in (self.base, self.socket_dir):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        else:
            self.socket_dir.mkdir(exist_ok=True)
        self._run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", self.user,
                   "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")
        options = f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' " + \
            " ".join(f"-c {setting}" for setting in self.settings)
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", "60", "-o", options, "start"], "start")
        self.started = True
        self.bin_dir = bin_dir

    def stop(self) -> None:
        if self.started and self.bin_dir is not None:
            pg_ctl = str(self.bin_dir / "pg_ctl")
            subprocess.run(self._as_owner([pg_ctl, "-D", str(self.data), "-m", "immediate",
                                           "-w", "stop"]),
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with psql (as the superuser) and return its unaligned output."""
        psql = str(self.bin_dir / "psql") if self.bin_dir and (self.bin_dir / "psql").exists() \
            else "psql"
        proc = subprocess.run(
            [psql, "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname,
             "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"psql failed on {sql!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def create_database(self, name: str | None = None,
                        template: str | None = None) -> PostgresDatabase:
        """A new database (copied from ``template`` when given: a database set up once and
        copied per test is the fastest way to start every test from the same rows)."""
        name = name or f"plait_test_{os.getpid()}_{next(self._databases)}"
        copy = f" TEMPLATE {_ident(template)}" if template else ""
        self.psql(f"CREATE DATABASE {_ident(name)}{copy}")
        return PostgresDatabase(self, name)

    def drop_database(self, name: str) -> None:
        from plait.sql import reset

        reset.forget(self.dsn(name))
        self.psql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresDatabase:
    """One database on a :class:`PostgresServer`: what ``plait_postgres_db`` gives a test.

    ``reset(script)`` at the top of an explored test makes each execution start from the
    rows ``script`` creates (see :func:`plait.sql.reset.reset_tables`)."""

    def __init__(self, server: PostgresServer, name: str) -> None:
        self.server = server
        self.name = name
        self.host = server.host
        self.port = server.port
        self.user = server.user

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    def url(self, scheme: str = "postgresql") -> str:
        """``postgresql://...`` (asyncpg, psycopg); ``scheme="postgresql+psycopg"`` or
        ``"postgresql+asyncpg"`` for SQLAlchemy."""
        return self.server.url(self.name, scheme)

    def connect_kwargs(self) -> dict[str, Any]:
        return self.server.connect_kwargs(self.name)

    def reset(self, script: str, *, recreate: bool = False) -> None:
        from plait.sql.reset import reset_tables

        reset_tables(self.dsn, script, recreate=recreate)

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.name!r} on {self.host})"


# -- the fixtures' bodies (plait.pytest_plugin declares the fixtures) ------------------------------
_SERVER: list[PostgresServer] = []


def session_server() -> PostgresServer:
    """This process's server, started on first use and stopped when the process ends."""
    if _SERVER and _SERVER[0].started:
        return _SERVER[0]
    import atexit

    server = PostgresServer()
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    _SERVER[:] = [server]
    atexit.register(server.stop)
    return server
