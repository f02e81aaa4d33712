"""The supplier's "check a buyer" page in headless Chromium: score, band, factors, trend.

A uvicorn server runs the node's app over the history of tests/ratings_support.py
(buyer-lyon: 84, low; buyer-rotterdam: insufficient). The page belongs to the
explorer: each test signs in with a real one-time sign-in link of a member key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from client.sdk import Client
from tests.harness import skip_or_fail
from tests.harness.browser import checked_page, chromium_available, launch_chromium
from tests.harness.server import serve_app
from tests.ratings_support import SUPPLIERS, As, module_node, seed_history, signed_app

pytestmark = pytest.mark.browser
SCREENSHOT = Path("/tmp/rating-page.png")


@pytest.fixture(scope="module")
def site(demo_consortium: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, As]]:
    db = tmp_path_factory.mktemp("rating-page") / "ledger.db"
    node = module_node(demo_consortium, f"sqlite:///{db}")
    seed_history(node, demo_consortium[2])
    with serve_app(signed_app(node, As())) as base_url:
        yield base_url, demo_consortium[2]
    node.store.close()


def sign_in(page: Page, base: str, orgs: Any, org: str | None) -> None:
    """Open an explorer session as a member of ``org`` (None: end any session)."""
    page.context.clear_cookies()
    if org is None:
        return
    with Client(base, key=orgs[org].member, chain_id="tradeledger-demo") as client:
        url = client.explorer_login_url()
    response = page.goto(url)
    assert response is not None and response.status == 200


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    skip_or_fail(chromium_available())
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, site: tuple[str, Any]) -> Iterator[Page]:
    """A fresh page signed in as supplier-sz; any script or console error (CSP
    included) fails."""
    base, orgs = site
    with checked_page(browser, allow_status=(400, 401, 403, 404),
                      viewport={"width": 1100, "height": 1000}) as pg:
        sign_in(pg, base, orgs, "supplier-sz")
        yield pg


def test_check_a_buyer_shows_score_band_factors_and_trend_chart(site: tuple[str, Any],
                                                                page: Page) -> None:
    base, _orgs = site
    response = page.goto(f"{base}/explorer/rating")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "Check a buyer"
    options = page.locator("#buyer-list option")
    assert {options.nth(i).get_attribute("value") for i in range(options.count())} == \
        {"buyer-lyon", "buyer-rotterdam"}
    page.get_by_label("Buyer").fill("buyer-lyon")
    page.get_by_role("button", name="Check").click()
    page.wait_for_url("**/explorer/rating?buyer=buyer-lyon")
    assert page.locator("#score .score-value").inner_text() == "84"
    assert page.locator("#band").inner_text() == "Low risk of late payment"
    factors = page.locator("#factors").inner_text()
    for text in ("Invoices counted\n3", "Suppliers\n3", "Days beyond terms (amount-weighted)\n3",
                 "Paid within terms\n67 %", "Worst delay\n10 days", "3,000.00 USD"):
        assert text in factors, factors
    assert "block" in page.locator("#as-of").inner_text()
    # The trend chart: server-side SVG, one point per span, drawn by the stylesheet.
    chart = page.locator("svg#trend-chart")
    assert chart.is_visible()
    points = chart.locator("circle.chart-point")
    assert [(points.nth(i).get_attribute("data-months"), points.nth(i).get_attribute(
        "data-score")) for i in range(points.count())] == [
        ("24", "84"), ("12", "84"), ("6", "84"), ("3", "84")]
    assert chart.locator("line.chart-line").count() == 3
    # The stylesheet reached the SVG (the CSP would block inline styles).
    fill = page.evaluate("() => getComputedStyle(document.querySelector('.chart-band.band-low'))"
                         ".fill")
    assert fill == "rgb(227, 245, 232)"
    box = chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 150
    rows = page.locator("#trend-table tbody tr")
    assert rows.count() == 4 and rows.nth(3).inner_text().split("\t") == ["3 months", "84", "3"]
    assert page.get_by_role("link", name="signed attestation").get_attribute("href") == \
        "/explorer/rating/buyer-lyon/attestation"
    # The supplier sees the buyer's aggregates, never another supplier's records.
    text = page.locator("main").inner_text()
    for other in SUPPLIERS:
        if other != "supplier-sz":
            assert other not in text
    assert "INV-" not in page.content()
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_insufficient_history_is_said_plainly(site: tuple[str, Any], page: Page) -> None:
    base, _orgs = site
    page.goto(f"{base}/explorer/rating?buyer=buyer-rotterdam")
    assert page.locator("#score").inner_text() == "Insufficient history"
    assert page.locator("#reason").inner_text().startswith("insufficient history: 1 of the 3")
    chart = page.locator("svg#trend-chart")
    assert chart.locator("circle.chart-point").count() == 0
    assert chart.locator("text.chart-missing").count() == 4
    assert page.locator("#band").count() == 0


def test_errors_are_pages_with_their_status(site: tuple[str, Any], page: Page) -> None:
    base, orgs = site
    unknown = page.goto(f"{base}/explorer/rating?buyer=buyer-nowhere")
    assert unknown is not None and unknown.status == 404
    assert page.locator("h1").inner_text() == "Buyer not found"
    bad = page.goto(f"{base}/explorer/rating?buyer=Robert%27)%3B--")
    assert bad is not None and bad.status == 400
    assert page.locator("h1").inner_text() == "Not an organisation id"
    sign_in(page, base, orgs, "buyer-rotterdam")
    denied = page.goto(f"{base}/explorer/rating?buyer=buyer-lyon")
    assert denied is not None and denied.status == 403
    assert page.locator("h1").inner_text() == "Not allowed to check buyers"
    assert "supplier or bank role" in page.locator("main").inner_text()
    sign_in(page, base, orgs, None)
    anonymous = page.goto(f"{base}/explorer/rating?buyer=buyer-lyon")
    assert anonymous is not None and anonymous.status == 401
