"""An ASGI app served by uvicorn in a thread, for tests that need a real HTTP server
(a browser cannot reach an in-process TestClient). Example::

    with serve_app(create_app(node)) as base_url:
        page.goto(f"{base_url}/explorer")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["serve_app"]


@contextlib.contextmanager
def serve_app(app: Any, *, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port until exit; yield its base URL.

    Ready once ``GET /health`` answers 200; the server is stopped and its thread joined
    on exit.
    """
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", log_level="warning",
                                           ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the server for {base_url} did not start")
            time.sleep(0.05)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
