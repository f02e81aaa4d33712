"""The order timeline page in a real headless Chromium, after the purchase-to-payment scenario.

A uvicorn server runs ``node.app.create_app`` in a thread; the scenario is submitted over
HTTP; Chromium reads the page, whose script (``static/timeline.js``) filters by flow under
the explorer's Content Security Policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from client.sdk import Client
from ledger.store import Store
from node.app import create_app
from node.service import LedgerNode
from tests import epcis_scenario as sc
from tests import test_rating_page_browser as rating_page_tests
from tests.harness.browser import checked_page
from tests.harness.server import serve_app

pytestmark = pytest.mark.browser
SCREENSHOT = Path("/tmp/timeline.png")  # left for a human look, not checked


@pytest.fixture(scope="module")
def site(demo_consortium: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    _c, genesis, orgs = demo_consortium
    # Not make_node: its stores close after each test, this one serves the module.
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('timeline') / 'ledger.db'}")
    node = LedgerNode(store, genesis, node_key=orgs["platform"].node, node_org="platform",
                      block_interval=0.01)
    with serve_app(create_app(node)) as url, \
            Client(url, genesis=genesis.to_bytes(), key=orgs["platform"].member) as client:
        sc.Scenario(client, {o: orgs[o].member for o in orgs}, genesis.chain_id).run()
        timeline = client.with_key(orgs["buyer-rotterdam"].member).get(
            f"/v1/orders/{sc.ORDER_ID}/timeline")
        yield url, orgs, timeline
    store.close()


# The rating page's sign-in (a real one-time link of a member key) and its Chromium.
sign_in = rating_page_tests.sign_in
browser = rating_page_tests.browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; any script or console error (CSP included) fails the test."""
    with checked_page(browser, allow_status=(401, 404),
                      viewport={"width": 1280, "height": 900}) as pg:
        yield pg


def test_the_timeline_page_shows_the_three_flows_and_filters_them(site: Any, page: Any
                                                                  ) -> None:
    url, orgs, timeline = site
    sign_in(page, url, orgs, "buyer-rotterdam")
    response = page.goto(f"{url}/explorer/orders/{sc.ORDER_ID}")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == f"Order {sc.ORDER_ID}"
    assert page.locator("#order-status").inner_text() == "invoiced"
    rows = page.locator("table.timeline tbody tr")
    entries = timeline["entries"]
    assert rows.count() == len(entries) == 19  # 5 trade records, 14 scans
    kinds = [rows.nth(i).get_attribute("data-kind") for i in range(rows.count())]
    assert kinds == [e["kind"] for e in entries]
    assert kinds[0] == "order" and kinds[-1] == "payment"
    assert {"invoice", "acknowledgement", "shipment", "customs", "warehouse"} <= set(kinds)
    # The script ran under the CSP: it counted the rows.
    assert page.locator("#shown-count").inner_text() == \
        f"{len(entries)} of {len(entries)} entries shown"

    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.get_by_role("button", name="Logistics").click()
    logistics = sum(1 for e in entries if e["flow"] == "logistics")
    assert page.locator("table.timeline tbody tr:visible").count() == logistics
    assert page.locator("#shown-count").inner_text() == \
        f"{logistics} of {len(entries)} entries shown"
    assert page.get_by_role("button", name="Logistics").get_attribute("aria-pressed") == "true"
    visible = page.locator("table.timeline tbody tr:visible")
    assert {visible.nth(i).get_attribute("data-flow") for i in range(logistics)} == \
        {"logistics"}

    page.get_by_role("button", name="Finance").click()
    assert page.locator("table.timeline tbody tr:visible").count() == 2
    page.get_by_role("button", name="All").click()
    assert page.locator("table.timeline tbody tr:visible").count() == len(entries)

    # The places the goods passed, and a link from an entry to its transaction page.
    places = page.locator("ol.places li")
    assert places.count() == len(timeline["locations"]) == 5
    first_scan = next(e for e in entries if e["flow"] == "logistics")
    page.locator(f"a[href='/explorer/tx/{first_scan['tx_id']}']").first.click()
    page.wait_for_url(f"**/explorer/tx/{first_scan['tx_id']}")
    assert "shipments.capture" in page.content()


def test_an_organisation_outside_the_order_gets_not_found(site: Any, page: Any) -> None:
    url, orgs, _timeline = site
    sign_in(page, url, orgs, "logistics")
    response = page.goto(f"{url}/explorer/orders/{sc.ORDER_ID}")
    assert response is not None and response.status == 404
    assert "Order not found" in page.locator("h1").inner_text()


def test_an_anonymous_visitor_is_asked_to_sign_in(site: Any, page: Any) -> None:
    url, _orgs, _timeline = site
    response = page.goto(f"{url}/explorer/orders/{sc.ORDER_ID}")
    assert response is not None and response.status == 401
    assert sc.ORDER_ID not in page.content()
