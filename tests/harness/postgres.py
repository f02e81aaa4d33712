"""A throw-away PostgreSQL server for tests, started from Debian's binaries.

PostgreSQL refuses to run as root, so when the tests run as root the data
directory is given to the ``postgres`` user and every server command runs
as that user (``runuser``). The server is a child process kept by PID and
stopped by it; nothing is daemonised.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg


def _bindir() -> Path | None:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def postgres_available() -> str | None:
    """``None`` when a server can be started here, otherwise the reason."""
    if _bindir() is None:
        return "PostgreSQL server binaries (initdb, postgres) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to switch to the postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """``with PostgresServer() as pg: url = pg.create_database("t1")``."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found")
        self.bindir = bindir
        self.port = _free_port()
        self.timeout = startup_timeout
        self.root = Path(tempfile.mkdtemp(prefix="tl-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0

    def _cmd(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_root else args

    def __enter__(self) -> PostgresServer:
        self.sockets.mkdir(parents=True)
        if self._as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
            os.chmod(self.root, 0o755)
        subprocess.run(self._cmd([str(self.bindir / "initdb"), "-D", str(self.data),
                                  "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                  "--locale=C.UTF-8"]),
                       check=True, capture_output=True, timeout=120)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self._cmd([str(self.bindir / "postgres"), "-D", str(self.data),
                       "-p", str(self.port), "-k", str(self.sockets),
                       "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                       "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                       "-c", "max_connections=200"]),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited: {self.log_tail()}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"PostgreSQL did not start: {self.log_tail()}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # runuser forwards the signal; "smart" shutdown on SIGTERM would wait
            # for clients, so ask for a fast shutdown (SIGINT), then insist.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)
