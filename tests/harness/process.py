"""Child processes the harness owns: started with a log file, stopped by PID, always reaped.

:class:`ServiceProcess` runs one command (a server), waits until it is ready (an HTTP URL
answering 200, or any callable) and stops it with SIGTERM, then SIGKILL, both bounded.
:func:`stop_process` is the same bounded stop for a bare :class:`subprocess.Popen`.

Every process still running when the interpreter exits (a test run interrupted between
start and stop) is stopped by an ``atexit`` hook, so no server outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.harness import HarnessError

__all__ = ["ServiceProcess", "http_ok", "read_tail", "stop_process"]

StrPath = str | os.PathLike[str]

#: Stoppers of everything still running, keyed by ``id(owner)``; run at interpreter exit.
_LIVE: dict[int, Callable[[], object]] = {}


def register_live(owner: object, stop: Callable[[], object]) -> None:
    """Remember ``stop`` so that ``owner`` is stopped at interpreter exit if still running."""
    _LIVE[id(owner)] = stop


def unregister_live(owner: object) -> None:
    """Forget ``owner``'s stopper (it was stopped)."""
    _LIVE.pop(id(owner), None)


@atexit.register
def _stop_all_live() -> None:
    for stop in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            stop()
    _LIVE.clear()


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_process(proc: subprocess.Popen[bytes], *, signals: Sequence[int] = (signal.SIGTERM,),
                 timeout: float = 10.0, pid: int | None = None) -> int | None:
    """Stop ``proc`` by PID and reap it; return its exit status (``None`` if it survived).

    Each of ``signals`` is sent in turn to ``pid`` (default ``proc.pid``; give the real
    server's PID when ``proc`` is a wrapper such as ``runuser``), waiting up to ``timeout``
    seconds after each. If the process is still alive then, it and its process group
    (children started with ``start_new_session=True`` lead their own group) get SIGKILL.
    """
    target = proc.pid if pid is None else pid
    for sig in signals:
        if proc.poll() is not None:
            break
        _signal_pid(target, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    if proc.poll() is None:
        if target != proc.pid:
            _signal_pid(target, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)
    return proc.poll()


def read_tail(path: StrPath, lines: int = 40, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of a (log) file, or ``""`` if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def http_ok(url: str, *, status: int = 200, timeout: float = 2.0) -> bool:
    """Whether a GET of ``url`` answers with ``status``; never raises on connection errors.

    Environment proxies are ignored: the harness's servers are all on the loopback.
    """
    import httpx

    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            return client.get(url).status_code == status
    except httpx.HTTPError:
        return False


class ServiceProcess:
    """A command run as a child process, with its output in a log file, stopped by PID.

    Use as a context manager (start and wait until ready on entry, stop on exit), or call
    :meth:`start` and :meth:`stop`; a stopped service may be started again (its log is
    appended to). Readiness is ``ready_url`` answering HTTP 200 (or ``ready_status``), or
    ``ready_check()`` returning true; with neither, the process is ready once started.

    The child leads its own session, so a Ctrl-C on the test run does not reach it and
    the final SIGKILL also reaches any children it forked.
    """

    def __init__(self, args: Sequence[StrPath], *, ready_url: str | None = None,
                 ready_check: Callable[[], bool] | None = None, ready_status: int = 200,
                 env: Mapping[str, str] | None = None, inherit_env: bool = True,
                 cwd: StrPath | None = None, log_path: StrPath | None = None,
                 name: str | None = None, ready_timeout: float = 30.0,
                 stop_timeout: float = 10.0, stop_signal: int = signal.SIGTERM) -> None:
        if not args:
            raise ValueError("args must not be empty")
        self.args = [os.fspath(a) for a in args]
        self.ready_url = ready_url
        self.ready_check = ready_check
        self.ready_status = ready_status
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.name = name or Path(self.args[0]).name
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path is not None else self._make_log()
        self._proc: subprocess.Popen[bytes] | None = None
        #: Seconds from the last :meth:`start` until the service was ready.
        self.startup_seconds: float | None = None

    def _make_log(self) -> Path:
        fd, path = tempfile.mkstemp(prefix=f"harness-{self.name}-", suffix=".log")
        os.close(fd)
        return Path(path)

    # -- state ------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The PID of the (last started) process."""
        if self._proc is None:
            raise HarnessError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the process's output."""
        return read_tail(self.log_path, lines)

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited={self.returncode}"
        pid = self._proc.pid if self._proc is not None else None
        return f"<ServiceProcess {self.name} pid={pid} {state}>"

    # -- start ------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        base = dict(os.environ) if self.inherit_env else {}
        base.update(self.env)
        return base

    def start(self, *, wait: bool = True) -> Self:
        """Start the process; with ``wait``, block until it is ready (see :meth:`wait_ready`)."""
        if self.running:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: starting {self.args!r}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.cwd, env=self._environment(), start_new_session=True)
        register_live(self, self.stop)
        started = time.monotonic()
        self.startup_seconds = None
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise
            self.startup_seconds = time.monotonic() - started
        return self

    def is_ready(self) -> bool:
        """One readiness probe (no waiting)."""
        if not self.running:
            return False
        if self.ready_check is not None and not self.ready_check():
            return False
        return self.ready_url is None or http_ok(self.ready_url, status=self.ready_status)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the service is ready; raise :class:`HarnessError` with the log tail
        if it exits first or is not ready within ``timeout`` (default ``ready_timeout``)."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        delay = 0.02
        while True:
            if self._proc is None:
                raise HarnessError(f"{self.name} was never started")
            code = self._proc.poll()
            if code is not None:
                raise HarnessError(f"{self.name} exited with status {code} before it was "
                                   f"ready; log tail:\n{self.log_tail()}")
            if self.is_ready():
                return
            if time.monotonic() >= deadline:
                what = self.ready_url or "its readiness check"
                raise HarnessError(f"{self.name} (pid {self._proc.pid}) not ready within "
                                   f"{timeout or self.ready_timeout:.0f}s ({what}); "
                                   f"log tail:\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    # -- stop -------------------------------------------------------------------------

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process's PID (no waiting; a no-op if it is not running)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for the process to exit; its status, or ``None``."""
        if self._proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout)
        return self._proc.poll()

    def stop(self, timeout: float | None = None, *, sig: int | None = None) -> int | None:
        """Stop by PID: ``sig`` (default ``stop_signal``, SIGTERM), then SIGKILL after
        ``timeout`` seconds (default ``stop_timeout``).

        Returns the exit status (``None`` if never started). Safe to call repeatedly.
        """
        unregister_live(self)
        if self._proc is None:
            return None
        return stop_process(self._proc, signals=(self.stop_signal if sig is None else sig,),
                            timeout=self.stop_timeout if timeout is None else timeout)

    def close(self) -> None:
        """Stop the process and delete the log file if the harness created it."""
        self.stop()
        if self._own_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
