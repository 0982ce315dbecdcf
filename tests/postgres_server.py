"""A real, throw-away PostgreSQL server for the tests and benchmarks (no mocks).

:class:`PostgresServer` runs Debian's ``postgresql`` binaries (``initdb``,
``pg_ctl``; ``make test`` installs the package when missing) on 127.0.0.1
and a free port, with its data in a temporary folder, and removes everything
on :meth:`~PostgresServer.stop`. ``initdb`` and ``postgres`` refuse to run
as root (CI runs as root): then the server runs as an unprivileged user,
``postgres`` when it exists, else ``imgcls-pg`` (created with ``useradd
--system``), through ``runuser``. Connections trust 127.0.0.1 (nothing
else can reach the server). :meth:`~PostgresServer.new_database` gives each
test a database of its own.

Usage::

    with PostgresServer() as pg:
        url = pg.new_database()          # postgresql://postgres@127.0.0.1:PORT/db_1
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir", "execute", "SERVER_USER"]

#: The unprivileged user created to run the server when running as root and no ``postgres`` user exists.
SERVER_USER = "imgcls-pg"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, or ``pg_config --bindir``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """None when not root (run as ourselves); else an unprivileged user, created if needed."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVER_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                   check=True, capture_output=True)
    return SERVER_USER


class PostgresServer:
    """A PostgreSQL server in a temporary folder, on 127.0.0.1 and a free port.

    Args:
        fsync: Keep PostgreSQL's default durable commits (``fsync=on``).
            ``False`` turns fsync off (faster; still every commit is
            acknowledged only after it is written to the server's log).
        max_connections: The server's connection limit.

    Raises:
        RuntimeError: No PostgreSQL binaries, or the server does not start (with its log).
    """

    def __init__(self, *, fsync: bool = True, max_connections: int = 200):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql; `make test` does it)")
        self.user = _server_user()
        self.fsync = fsync
        self.max_connections = max_connections
        self.port = 0
        self.root: Path | None = None
        self._names = itertools.count(1)

    # -- running commands as the server's user ---------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def start(self) -> PostgresServer:
        """initdb + pg_ctl start (waits until it accepts connections)."""
        self.root = Path(tempfile.mkdtemp(prefix="imgcls-pg-"))
        os.chmod(self.root, 0o755)  # the server's user must reach it (pytest's tmp dirs are 0700)
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        data, log = self.root / "data", self.root / "server.log"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--locale=C")
        for _ in range(5):  # a free port may be taken between the check and the start
            self.port = _free_port()
            options = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections={self.max_connections} "
                       f"-c fsync={'on' if self.fsync else 'off'} -c shared_buffers=32MB")
            proc = self._run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                             "start", check=False)
            if proc.returncode == 0:
                return self
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {proc.stdout}{proc.stderr}\n{text[-3000:]}")

    def stop(self) -> None:
        """Stop the server (immediate shutdown: its data is thrown away) and delete its folder."""
        if self.root is None:
            return
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:PORT/database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database (``db_1``, ``db_2``, ... unless named) and return its URL."""
        import psycopg

        name = name or f"db_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def execute(url: str, statements, params=()) -> list:
    """Run raw SQL, written in SQLite's spelling, on the log at ``url`` (either engine); rows of the last.

    For tests that shape a log by hand (an old schema, a foreign table). On
    PostgreSQL each statement goes through the log's own translation
    (:meth:`imgcls.translog.dialects.PostgresDialect.translate`).
    """
    import sqlite3

    from imgcls.translog.dialects import PostgresDialect

    statements = [statements] if isinstance(statements, str) else list(statements)
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            rows = [conn.execute(s, params).fetchall() for s in statements]
        conn.close()
        return rows[-1] if rows else []
    import psycopg

    rows = []
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            cur = conn.execute(PostgresDialect.translate(s), tuple(params))
            rows.append(cur.fetchall() if cur.description else [])
    return rows[-1] if rows else []
