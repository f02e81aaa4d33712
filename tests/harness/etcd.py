"""A local etcd cluster (default 3 members) on 127.0.0.1, each member a child process.

Every member gets free client and peer ports and its own data directory under one temp
directory; the cluster is ready once every member's ``/health`` answers ``"true"`` (it
has a leader). Members can be stopped and started again by index to test fail-over; all
are stopped by PID, and the directory removed, on exit. Example::

    with EtcdCluster(3) as etcd:
        httpx.post(etcd.endpoints[0] + "/v3/kv/put", json={"key": b64("k"), "value": b64("v")})
        etcd.stop_member(0)
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.harness import HarnessError
from tests.harness.ports import HOST, free_ports
from tests.harness.process import ServiceProcess, register_live, unregister_live

__all__ = ["EtcdCluster", "EtcdMember", "etcd_available", "etcd_binary", "etcd_version",
           "etcdctl_binary"]

_BIND_ERRORS = ("address already in use", "bind: ")


def etcd_binary() -> str | None:
    """Path of the ``etcd`` server binary (``$ETCD_BINARY``, ``PATH``, ``/usr/bin``)."""
    override = os.environ.get("ETCD_BINARY")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("etcd") or (
        "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)


def etcdctl_binary() -> str | None:
    """Path of ``etcdctl`` (Debian package ``etcd-client``), if installed."""
    return shutil.which("etcdctl")


def etcd_version(binary: str | None = None) -> str | None:
    """The version ``etcd --version`` reports (e.g. ``"3.4.23"``), or ``None`` if it fails."""
    binary = binary or etcd_binary()
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15,
                             stdin=subprocess.DEVNULL, env=_clean_env()).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"etcd Version:\s*(\S+)", out)
    return match.group(1) if match else None


def etcd_available() -> str | None:
    """``None`` if an :class:`EtcdCluster` can be started here, else the reason it can't.

    Local runs skip etcd tests on a reason; in CI (``CI=true``) the caller must treat it as
    an error (see :func:`tests.harness.skip_or_fail`).
    """
    try:
        import httpx  # noqa: F401
    except ImportError:
        return "httpx is not installed"
    binary = etcd_binary()
    if binary is None:
        return "etcd not found (Debian: apt-get install etcd-server)"
    version = etcd_version(binary)
    if version is None:
        return f"`{binary} --version` failed"
    if int(version.split(".")[0]) < 3:
        return f"etcd {version} is too old: the v3 API is needed"
    return None


def _clean_env() -> dict[str, str]:
    """The environment without ``ETCD_*`` variables, which etcd refuses next to flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}


def _healthy(client_url: str, timeout: float = 2.0) -> bool:
    """Whether the member at ``client_url`` reports itself healthy (it sees a leader)."""
    import httpx

    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            response = client.get(client_url + "/health")
        return response.status_code == 200 and response.json().get("health") == "true"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


@dataclass
class EtcdMember:
    """One member: its name, ports, data directory and process."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: ServiceProcess

    @property
    def client_url(self) -> str:
        """``http://127.0.0.1:CLIENT_PORT``."""
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        """``http://127.0.0.1:PEER_PORT``."""
        return f"http://{HOST}:{self.peer_port}"


class EtcdCluster:
    """``size`` etcd members on 127.0.0.1, started together and stopped by PID on exit.

    ``endpoints`` lists every member's client URL (stopped ones included; see
    ``live_endpoints``). Raft timings are shortened (``heartbeat_ms``, ``election_ms``)
    so that a new leader is elected within about a second of the old one stopping.
    """

    def __init__(self, size: int = 3, *, binary: str | None = None, heartbeat_ms: int = 50,
                 election_ms: int = 500, ready_timeout: float = 30.0,
                 stop_timeout: float = 10.0, extra_args: Sequence[str] = ()) -> None:
        if size < 1:
            raise ValueError("an etcd cluster needs at least one member")
        self.size = size
        self.binary = binary
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        self.members: list[EtcdMember] = []
        self.base_dir: Path | None = None
        self.token = ""
        #: Seconds from :meth:`start` until every member was healthy.
        self.startup_seconds: float | None = None

    # -- views ------------------------------------------------------------------------------

    @property
    def endpoints(self) -> list[str]:
        """Client URLs of all members, ``["http://127.0.0.1:PORT", ...]``, by index."""
        return [m.client_url for m in self.members]

    @property
    def live_endpoints(self) -> list[str]:
        """Client URLs of the members whose process is running."""
        return [m.client_url for m in self.members if m.process.running]

    @property
    def pids(self) -> list[int | None]:
        """Each member's PID (``None`` for a stopped member)."""
        return [m.process.pid if m.process.running else None for m in self.members]

    def member(self, index: int) -> EtcdMember:
        """Member ``index`` (0-based)."""
        return self.members[index]

    def healthy(self, index: int) -> bool:
        """Whether member ``index`` is running and reports a leader."""
        m = self.members[index]
        return m.process.running and _healthy(m.client_url)

    def leader_index(self) -> int | None:
        """Index of the current Raft leader, as the live members report it, or ``None``."""
        import httpx

        ids: dict[str, int] = {}
        leader: str | None = None
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            for i, m in enumerate(self.members):
                if not m.process.running:
                    continue
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    status = client.post(m.client_url + "/v3/maintenance/status", json={}).json()
                    ids[str(status["header"]["member_id"])] = i
                    leader = str(status["leader"]) if status.get("leader") else leader
        return None if leader is None else ids.get(leader)

    def log_tail(self, index: int, lines: int = 40) -> str:
        """The last ``lines`` lines of member ``index``'s log."""
        return self.members[index].process.log_tail(lines)

    # -- lifecycle --------------------------------------------------------------------------

    def _member_args(self, name: str, data_dir: Path, client_url: str, peer_url: str,
                     initial_cluster: str) -> list[str]:
        binary = self.binary or etcd_binary()
        if binary is None:
            raise HarnessError(etcd_available() or "etcd not found")
        return [
            binary, "--name", name, "--data-dir", str(data_dir),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--logger", "zap", "--log-outputs", "stderr",
            *self.extra_args,
        ]

    def _create_members(self, base: Path) -> None:
        ports = free_ports(2 * self.size)
        self.token = f"harness-{uuid.uuid4().hex[:12]}"
        names = [f"m{i}" for i in range(self.size)]
        peers = [f"http://{HOST}:{ports[2 * i + 1]}" for i in range(self.size)]
        initial_cluster = ",".join(f"{n}={p}" for n, p in zip(names, peers, strict=True))
        self.members = []
        for i, name in enumerate(names):
            client_url = f"http://{HOST}:{ports[2 * i]}"
            data_dir = base / name
            args = self._member_args(name, data_dir, client_url, peers[i], initial_cluster)
            process = ServiceProcess(
                args, env=_clean_env(), inherit_env=False, cwd=base,
                log_path=base / f"{name}.log", name=f"etcd-{name}",
                ready_timeout=self.ready_timeout, stop_timeout=self.stop_timeout,
                ready_check=functools.partial(_healthy, client_url))
            member = EtcdMember(name, ports[2 * i], ports[2 * i + 1], data_dir, process)
            self.members.append(member)

    def start(self) -> Self:
        """Start all members and wait until each is healthy (retrying on port clashes)."""
        if self.members:
            raise HarnessError("EtcdCluster already started")
        started = time.monotonic()
        self.base_dir = Path(tempfile.mkdtemp(prefix="tl-etcd-"))
        register_live(self, self.stop)
        for attempt in range(3):
            base = self.base_dir / f"try{attempt}"
            base.mkdir(mode=0o700)
            self._create_members(base)
            for m in self.members:
                m.process.start(wait=False)
            try:
                self.wait_healthy(timeout=self.ready_timeout)
                break
            except HarnessError as exc:
                self._stop_all()
                clash = any(e in m.process.log_tail(200).lower()
                            for m in self.members for e in _BIND_ERRORS)
                if not clash or attempt == 2:
                    raise HarnessError(f"{exc}\n{self._log_tails()}") from exc
        self.startup_seconds = time.monotonic() - started
        return self

    def wait_healthy(self, indices: Sequence[int] | None = None,
                     timeout: float | None = None) -> None:
        """Wait until members ``indices`` (default: all running ones) are healthy."""
        chosen = list(range(self.size)) if indices is None else list(indices)
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        pending = [i for i in chosen if indices is not None or self.members[i].process.running]
        while pending:
            for i in list(pending):
                process = self.members[i].process
                if not process.running:
                    raise HarnessError(f"etcd member {i} exited with status "
                                       f"{process.returncode}; log tail:\n{process.log_tail()}")
                if _healthy(self.members[i].client_url):
                    pending.remove(i)
            if pending and time.monotonic() >= deadline:
                raise HarnessError(f"etcd members {pending} not healthy within "
                                   f"{timeout or self.ready_timeout:.0f}s")
            if pending:
                time.sleep(0.05)

    def _log_tails(self) -> str:
        return "\n".join(f"--- {m.name} log tail:\n{m.process.log_tail(20)}"
                         for m in self.members)

    def stop_member(self, index: int, *, sig: int = signal.SIGTERM) -> int | None:
        """Stop member ``index`` by PID (``sig``, then SIGKILL if it lingers); its exit status.

        Pass ``sig=signal.SIGKILL`` for a crash instead of a graceful stop.
        """
        return self.members[index].process.stop(sig=sig)

    def start_member(self, index: int, *, wait: bool = True) -> None:
        """Start member ``index`` again on its data directory; with ``wait``, until healthy."""
        process = self.members[index].process
        process.start(wait=False)
        if wait:
            self.wait_healthy([index])

    def _stop_all(self) -> None:
        """Stop every running member, the current leader first each time.

        A member that outlives the leader it followed can take seconds to shut down on
        SIGTERM; stopping leaders first keeps the whole teardown well under a second.
        """
        while True:
            running = [i for i, m in enumerate(self.members) if m.process.running]
            if not running:
                return
            leader = self.leader_index() if len(running) > 1 else None
            index = leader if leader in running else running[0]
            self.members[index].process.stop()

    def stop(self) -> None:
        """Stop every member by PID and remove the cluster's directory. Idempotent."""
        unregister_live(self)
        try:
            self._stop_all()
        finally:
            self.members = []
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
        return f"<EtcdCluster size={self.size} endpoints={self.endpoints} pids={self.pids}>"
