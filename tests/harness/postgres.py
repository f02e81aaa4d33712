"""A throwaway PostgreSQL server for tests: ``initdb`` in a temp dir, ``postgres`` as a child.

PostgreSQL refuses to run as root. Run as root (the normal case on our machines and in CI),
the harness gives its temp directory to the ``postgres`` OS user and runs ``initdb`` and the
server as that user: by switching user in the child itself (``Popen(user=...)``), else via
``runuser -u postgres --``, else ``su postgres -c`` -- the first that works here. Run as any
other user, it runs them directly as that user.

The server is a child process (not daemonised by ``pg_ctl``) listening on 127.0.0.1 and a
private socket directory, with durability switched off for speed. It is stopped by the
postmaster's PID (SIGINT, fast shutdown, which also ends any sessions a test leaked; then
SIGQUIT; then SIGKILL, each bounded) and its directory removed.

Example::

    with PostgresServer() as pg:
        engine = sqlalchemy.create_engine(pg.create_database("t1"))
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.harness import HarnessError
from tests.harness.ports import HOST, free_port
from tests.harness.process import read_tail, register_live, stop_process, unregister_live

__all__ = ["PostgresServer", "find_bindir", "postgres_available"]

SUPERUSER = "postgres"
DEFAULT_DBNAME = "tradeledger"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BIND_ERRORS = ("could not bind", "Address already in use", "could not create any TCP/IP")
#: Longest socket-file path the kernel accepts (sun_path is 108 bytes with the NUL).
_MAX_SOCKET_PATH = 107

#: Settings passed with ``-c``: loopback only, durability off (tests need speed, not safety).
DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # Room for many per-test engines whose pools are not disposed promptly.
    "max_connections": "300",
}


# -- finding the binaries -----------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` -> ``(15,)``; unparsable versions sort first."""
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres"))


@functools.lru_cache(maxsize=1)
def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or ``None`` if there is none.

    Tried in order: ``$PG_BINDIR``; ``pg_config --bindir``; the highest version of
    ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu); the directories of ``initdb`` and
    ``postgres`` found on ``PATH`` (symlinks resolved).
    """
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key,
                             reverse=True))
    for name in ("initdb", "postgres"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found).resolve().parent)
    return next((c for c in candidates if _has_server(c)), None)


def postgres_available() -> str | None:
    """``None`` if a :class:`PostgresServer` can be started here, else the reason it can't.

    Local runs skip PostgreSQL tests on a reason; in CI (``CI=true``) the caller must
    treat it as an error (see :func:`tests.harness.skip_or_fail`).
    """
    if find_bindir() is None:
        return ("PostgreSQL server binaries (initdb, postgres) not found via $PG_BINDIR, "
                "pg_config, /usr/lib/postgresql/*/bin or PATH; install the 'postgresql' package")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return (f"running as root, and PostgreSQL refuses root, but there is no "
                    f"'{SUPERUSER}' OS user to run it as")
    return None


# -- running as the server's OS user ------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """How to run a command as ``user``: ``self`` (we are that user, or not root),
    ``setuid`` (``Popen(user=...)``), ``runuser`` or ``su``."""

    method: str
    user: str
    uid: int
    gid: int
    home: str

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` wrapped for this method."""
        if self.method == "runuser":
            return ["runuser", "-u", self.user, "--", *args]
        if self.method == "su":
            return ["su", "-s", "/bin/sh", self.user, "-c", "exec " + shlex.join(args)]
        return list(args)

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra :class:`subprocess.Popen` arguments for this method."""
        if self.method == "setuid":
            return {"user": self.uid, "group": self.gid, "extra_groups": []}
        return {}

    def environment(self) -> dict[str, str]:
        """A small, predictable environment for ``initdb`` and ``postgres``."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "USER": self.user, "LOGNAME": self.user, "LANG": "C", "LC_ALL": "C"}
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env


def _current_user() -> RunAs:
    entry = pwd.getpwuid(os.geteuid())
    return RunAs("self", entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


@functools.lru_cache(maxsize=4)
def resolve_run_as(user: str = SUPERUSER) -> RunAs:
    """The first method that really runs a command as ``user`` here (probed with ``id -u``).

    Not root: the current user, directly (``user`` is then ignored unless it is us).
    """
    if os.geteuid() != 0:
        return _current_user()
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise HarnessError(f"no OS user {user!r} to run PostgreSQL as (it refuses root)") from exc
    if entry.pw_uid == 0:
        raise HarnessError(f"OS user {user!r} is root; PostgreSQL refuses to run as root")
    failures: list[str] = []
    for method in ("setuid", "runuser", "su"):
        run_as = RunAs(method, user, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")
        try:
            probe = subprocess.run(run_as.command(["id", "-u"]), capture_output=True, text=True,
                                   timeout=15, stdin=subprocess.DEVNULL, cwd="/",
                                   env=run_as.environment(), **run_as.popen_kwargs())
        except (OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{method}: {exc}")
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(entry.pw_uid):
            return run_as
        failures.append(f"{method}: status {probe.returncode}: {probe.stderr.strip()[:200]}")
    raise HarnessError(f"cannot run commands as {user!r}: " + "; ".join(failures))


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether every directory on ``path`` can be entered by ``uid``/``gid`` (approximate:
    supplementary groups are not considered)."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _temp_parent(run_as: RunAs) -> Path:
    """Where to make the server's temp dir: the usual temp dir if the server's user can
    reach it and socket paths in it are short enough, else ``/tmp``."""
    parent = Path(tempfile.gettempdir())
    too_long = len(str(parent)) + len("/tl-pg-xxxxxxxx/sock/.s.PGSQL.65535") > _MAX_SOCKET_PATH
    if too_long or not _traversable_by(parent, run_as.uid, run_as.gid):
        return Path("/tmp")
    return parent


class _PortInUse(HarnessError):
    """The server could not bind its port (taken since we picked it); retry with another."""


# -- the server ---------------------------------------------------------------------------


class PostgresServer:
    """A PostgreSQL server in a temp directory, for the length of a ``with`` block.

    Attributes once started: ``port``, ``url`` (SQLAlchemy URL of database ``dbname``),
    ``pid`` (the postmaster), ``base_dir`` (``data/``, ``sock/`` and ``postgres.log``
    inside), ``startup_seconds``. :meth:`create_database` makes a fresh database and
    returns its URL.
    """

    def __init__(self, *, dbname: str = DEFAULT_DBNAME, port: int | None = None,
                 user: str = SUPERUSER, settings: Mapping[str, str] | None = None,
                 ready_timeout: float = 30.0, stop_timeout: float = 10.0,
                 bindir: str | os.PathLike[str] | None = None) -> None:
        _check_name(dbname)
        self.dbname = dbname
        self.host = HOST
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._fixed_port = port
        self._user = user
        self._bindir = Path(bindir) if bindir is not None else None
        self._run_as: RunAs | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._postmaster_pid: int | None = None
        self.port: int = 0
        self.base_dir: Path | None = None
        #: Seconds from :meth:`start` until the server accepted connections and ``dbname``
        #: existed (``initdb_seconds`` of it spent in ``initdb``).
        self.startup_seconds: float | None = None
        self.initdb_seconds: float | None = None

    # -- paths and URLs -----------------------------------------------------------------

    def _base(self) -> Path:
        if self.base_dir is None:
            raise HarnessError("PostgresServer is not started")
        return self.base_dir

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory of the server's Unix socket."""
        return self._base() / "sock"

    @property
    def log_path(self) -> Path:
        """The server's log (``initdb``'s output first)."""
        return self._base() / "postgres.log"

    @property
    def pid(self) -> int:
        """The postmaster's PID."""
        if self._postmaster_pid is not None:
            return self._postmaster_pid
        if self._proc is None:
            raise HarnessError("PostgresServer is not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def url_for(self, dbname: str) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of database ``dbname`` on this server."""
        _check_name(dbname)
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's default database (``dbname``)."""
        return self.url_for(self.dbname)

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq connection string (for ``psycopg.connect``) to ``dbname``."""
        name = dbname or self.dbname
        _check_name(name)
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={name}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        return read_tail(self.log_path, lines) if self.base_dir is not None else ""

    # -- databases ------------------------------------------------------------------------

    def _admin_execute(self, statement: Any) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` (letters, digits, ``_``) and return its URL."""
        from psycopg import sql

        _check_name(name)
        self._admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, ending its sessions first."""
        from psycopg import sql

        _check_name(name)
        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """initdb, start the server, wait until it accepts connections, create ``dbname``."""
        if self._proc is not None:
            raise HarnessError("PostgresServer already started")
        started = time.monotonic()
        bindir = self._bindir or find_bindir()
        if bindir is None:
            raise HarnessError(postgres_available() or "PostgreSQL binaries not found")
        run_as = self._run_as = resolve_run_as(self._user)
        base = self.base_dir = Path(tempfile.mkdtemp(prefix="tl-pg-", dir=_temp_parent(run_as)))
        register_live(self, self.stop)
        for sub in ("data", "sock"):
            (base / sub).mkdir(mode=0o700)
        if os.geteuid() != run_as.uid:
            for path in (base, self.data_dir, self.socket_dir):
                os.chown(path, run_as.uid, run_as.gid)
        self.log_path.touch()

        self._initdb(bindir, run_as)
        self.initdb_seconds = time.monotonic() - started
        for attempt in range(5):
            self.port = self._fixed_port or free_port()
            self._launch(bindir, run_as)
            try:
                self._wait_ready()
                break
            except _PortInUse:
                self._stop_server()
                if self._fixed_port is not None or attempt == 4:
                    raise
        self._postmaster_pid = self._read_postmaster_pid()
        self.create_database(self.dbname)
        self.startup_seconds = time.monotonic() - started
        return self

    def _initdb(self, bindir: Path, run_as: RunAs) -> None:
        args = [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: {run_as.method} as {run_as.user}: {args!r}\n".encode())
            log.flush()
            try:
                result = subprocess.run(run_as.command(args), stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, cwd=self._base(),
                                        env=run_as.environment(), timeout=120,
                                        **run_as.popen_kwargs())
            except subprocess.TimeoutExpired as exc:
                raise HarnessError(f"initdb timed out; log tail:\n{self.log_tail()}") from exc
        if result.returncode != 0:
            raise HarnessError(f"initdb failed with status {result.returncode}; "
                               f"log tail:\n{self.log_tail()}")

    def _launch(self, bindir: Path, run_as: RunAs) -> None:
        args = [str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-k", str(self.socket_dir)]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: starting {args!r}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                run_as.command(args), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self._base(), env=run_as.environment(),
                start_new_session=True, **run_as.popen_kwargs())

    def _wait_ready(self) -> None:
        import psycopg

        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.02
        last_error = ""
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                error = _PortInUse if any(e in tail for e in _BIND_ERRORS) else HarnessError
                raise error(f"postgres exited with status {code} before accepting connections "
                            f"on port {self.port}; log tail:\n{tail}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
                # Another server may have taken the port just before ours failed to bind.
                if row is not None and Path(row[0]).resolve() == self.data_dir.resolve():
                    return
                last_error = f"port {self.port} is answered by another server ({row})"
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip()
            if time.monotonic() >= deadline:
                raise HarnessError(f"postgres (pid {self._proc.pid}) not accepting connections "
                                   f"within {self.ready_timeout:.0f}s: {last_error}; "
                                   f"log tail:\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _read_postmaster_pid(self) -> int | None:
        """The PID in ``postmaster.pid`` (the wrapper's child under runuser/su)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def _stop_server(self) -> int | None:
        if self._proc is None:
            return None
        pid = self._postmaster_pid or self._read_postmaster_pid() or self._proc.pid
        code = stop_process(self._proc, signals=(signal.SIGINT, signal.SIGQUIT),
                            timeout=self.stop_timeout, pid=pid)
        self._proc = None
        self._postmaster_pid = None
        return code

    def stop(self) -> None:
        """Stop the server by its PID (bounded) and remove its directory. Idempotent."""
        unregister_live(self)
        try:
            self._stop_server()
        finally:
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port} pid={self.pid}" if self.running else "stopped"
        return f"<PostgresServer {state}>"


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(f"database name {name!r} must match {_NAME_RE.pattern}")
