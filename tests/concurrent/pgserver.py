"""A throwaway PostgreSQL server for the tests, started from the binaries on the machine.

initdb refuses to run as root, so as root the server runs as an unprivileged user
(``postgres`` if it exists, else ``nobody``). Data and the unix socket live in a temporary
directory that user owns; the server listens on no TCP port at all, so it never clashes
with another server. ``stop()`` removes everything.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

HINT = "run scripts/ensure-postgres (it installs the Debian package postgresql)"


class PostgresUnavailable(RuntimeError):
    pass


def find_bin() -> Path:
    chosen = os.environ.get("PLAIT_PG_BIN")
    if chosen:  # set: use it or fail, so a broken choice is never covered up
        if not (Path(chosen) / "initdb").exists():
            raise PostgresUnavailable(f"PLAIT_PG_BIN={chosen} has no initdb; {HINT}")
        return Path(chosen)
    newest_first = lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()]  # noqa: E731
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=newest_first, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").exists()
            and (Path(candidate) / "pg_ctl").exists()
        ):
            return Path(candidate)
    raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl) found; {HINT}")


class PostgresServer:
    port = 5432  # only names the socket file: the server listens on no TCP port
    user = "plait"  # the superuser role initdb creates (trust auth on the private socket)

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="plait-pg-"))
        self.socket_dir = self.base / "sock"
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.started = False

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        if shutil.which("setpriv"):
            uid, gid = self.owner.pw_uid, self.owner.pw_gid
            return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]
        return ["runuser", "-u", self.owner.pw_name, "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        proc = subprocess.run(
            self._as_owner(argv),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"PostgreSQL {what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                f"{proc.stdout}{proc.stderr}{log}"
            )

    def start(self) -> None:
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
                    "running as root and no 'postgres' or 'nobody' user to run the server as"
                )
            self.socket_dir.mkdir()
            os.chmod(self.base, 0o755)
            for path in (self.base, self.socket_dir):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        else:
            self.socket_dir.mkdir()
        self._run(
            [str(bin_dir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            "initdb",
        )  # fmt: skip
        options = (
            f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "-o", options, "start"],
            "start",
        )  # fmt: skip
        self.started = True
        self.bin_dir = bin_dir

    def stop(self) -> None:
        if self.started:
            pg_ctl = str(self.bin_dir / "pg_ctl")
            subprocess.run(
                self._as_owner([pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql: str) -> str:
        where = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user]
        proc = subprocess.run(
            ["psql", *where, "-d", "postgres", "-tAc", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return proc.stdout.strip()


if __name__ == "__main__":  # smoke test: python tests/concurrent/pgserver.py
    server = PostgresServer()
    try:
        server.start()
        print(server.psql("select version()"))
    finally:
        server.stop()
