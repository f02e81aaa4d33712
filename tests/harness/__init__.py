"""Test harness: real PostgreSQL, Chromium, etcd and service processes for the test-suite.

Every server is a child process whose PID the harness keeps and stops by that PID; every
temporary directory it makes is removed on exit. Submodules are imported on demand so that
importing one (say :mod:`tests.harness.postgres`) does not pull in Playwright or httpx.

* :mod:`tests.harness.ports` -- :func:`free_port`, :func:`free_ports`.
* :mod:`tests.harness.postgres` -- :class:`PostgresServer`, :func:`postgres_available`.
* :mod:`tests.harness.browser` -- :func:`launch_chromium`, :func:`chromium_available`,
  :func:`watch_errors`.
* :mod:`tests.harness.server` -- :func:`serve_app` (an ASGI app under uvicorn in a thread).
* :mod:`tests.harness.process` -- :class:`ServiceProcess`.
* :mod:`tests.harness.etcd` -- :class:`EtcdCluster`, :func:`etcd_available`.

Each ``*_available()`` returns ``None`` when the tool can run, else a reason string.
:func:`skip_or_fail` turns such a reason into a skip locally and a failure in CI.
"""

from __future__ import annotations

import os

__all__ = ["HarnessError", "in_ci", "skip_or_fail"]


class HarnessError(RuntimeError):
    """A harness-managed server or process could not be started or stopped."""


def in_ci() -> bool:
    """Whether we run in CI (``CI`` set to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def skip_or_fail(reason: str | None) -> None:
    """Skip the current test for ``reason`` locally; fail it in CI; do nothing if ``None``.

    Meant for the ``*_available()`` results: a missing tool is a skip on a developer's
    machine but an error in CI, where the project's own setup must have installed it.
    """
    if reason is None:
        return
    import pytest

    if in_ci():
        pytest.fail(f"required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)
