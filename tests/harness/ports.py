"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["HOST", "free_port", "free_ports"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free when asked (the OS picks it).

    Another process may still take it before the caller binds; servers started by the
    harness retry with a new port when binding fails.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1.

    All sockets are held open until every port is chosen, so the ports differ.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports
