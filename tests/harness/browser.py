"""Headless Chromium for browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright's own browser downloads are not used (they cannot be fetched on our machines);
the system Chromium is launched through ``executable_path``. Example::

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            ...
        finally:
            browser.close()

or, owning both Playwright and the browser, ``with chromium_browser() as browser: ...``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

__all__ = ["CHROMIUM_ARGS", "CHROMIUM_PATH", "checked_page", "chromium_available",
           "chromium_browser", "launch_chromium", "watch_errors"]

CHROMIUM_PATH = "/usr/bin/chromium"
#: Flags for a quiet, sandbox-free (we run as root) headless Chromium with no network chatter.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
)


def chromium_available(executable_path: str = CHROMIUM_PATH) -> str | None:
    """``None`` if Chromium can be launched through Playwright, else the reason it can't.

    Local runs skip browser tests on a reason; in CI (``CI=true``) the caller must treat it
    as an error (see :func:`tests.harness.skip_or_fail`).
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not os.path.isfile(executable_path):
        return f"Chromium not found at {executable_path} (Debian: apt-get install chromium)"
    if not os.access(executable_path, os.X_OK):
        return f"{executable_path} is not executable"
    return None


def launch_chromium(playwright: Playwright, *, executable_path: str = CHROMIUM_PATH,
                    extra_args: Sequence[str] = (), timeout_ms: float = 30_000,
                    **launch_options: Any) -> Browser:
    """Launch headless Chromium from ``executable_path`` with :data:`CHROMIUM_ARGS`.

    ``playwright`` is the object from ``sync_playwright()``; close the returned browser
    (Playwright also kills it when its context manager exits). Other keyword arguments go
    to ``BrowserType.launch``.
    """
    return playwright.chromium.launch(
        executable_path=executable_path, headless=True,
        args=[*CHROMIUM_ARGS, *extra_args], timeout=timeout_ms, **launch_options)


@contextlib.contextmanager
def chromium_browser(**kwargs: Any) -> Iterator[Browser]:
    """Playwright plus a launched Chromium (see :func:`launch_chromium`), both closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, **kwargs)
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page: Page) -> list[str]:
    """Collect ``page``'s script errors and console errors (CSP violations included).

    Returns the list the listeners append to; a test asserts it is empty at the end
    (after dropping the console error Chromium logs for an error page's own status).
    """
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    return problems


@contextlib.contextmanager
def checked_page(browser: Browser, *, allow_status: Sequence[int] = (),
                 **context_options: Any) -> Iterator[Page]:
    """A page in a fresh context; on exit, fail on any script or console error.

    Chromium logs an error page's own load ("... status of 404") as a console error:
    list the statuses a test expects in ``allow_status``.
    """
    context = browser.new_context(**context_options)
    page = context.new_page()
    problems = watch_errors(page)
    try:
        yield page
    finally:
        context.close()
    unexpected = [p for p in problems
                  if not any(f"status of {status}" in p for status in allow_status)]
    assert not unexpected, unexpected
