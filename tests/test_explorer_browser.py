"""The explorer in a real headless Chromium: pages, links and the in-browser verifier.

A uvicorn server runs ``node.app.create_app`` in a thread; Chromium browses it.
The verifier (``node/static/verify.js``) is checked on honest bundles and on
tampered ones, each of which ``client.verify`` must reject for the same reason.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from client.consortium import DEMO_DESCRIPTION, init_consortium
from client.sdk import Client, TxBuilder
from client.verify import BundleError, verify_inclusion_bundle
from ledger.chain import Genesis
from ledger.keys import SigningKey, load_key
from ledger.store import Store
from node.app import create_app
from node.service import LedgerNode
from tests.harness.browser import checked_page
from tests.harness.server import serve_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
SCREENSHOT = Path("/tmp/explorer.png")

@dataclass
class Env:
    base_url: str
    node: LedgerNode
    genesis: Genesis
    genesis_tx_id: str
    key_path: Callable[[str, str], Path]
    committed: dict[str, int] = field(default_factory=dict)  # tx id -> height
    rejected: str = ""

    def login_url(self, org: str) -> str:
        """A one-time sign-in link for a member of ``org``."""
        key = load_key(self.key_path(org, "member1"), "pw")
        with Client(self.base_url, key=key, chain_id=self.genesis.chain_id) as client:
            return client.explorer_login_url()


def sign_in(page: Page, env: Env, org: str) -> None:
    response = page.goto(env.login_url(org))
    assert response is not None and response.status == 200
    assert page.url.endswith("/explorer")


def _enrol(consortium_key: Callable[[str, str], Path], org: str, *, author_org: str | None = None,
           chain_id: str) -> dict[str, Any]:
    admin = load_key(consortium_key(author_org or org, "admin"), "pw")
    payload = {"org": org, "public_key": SigningKey.generate().public_key_hex, "kind": "member"}
    wire: dict[str, Any] = TxBuilder(admin, chain_id=chain_id).build(
        "membership.key_enrol", payload).to_wire()
    return wire


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp_path = tmp_path_factory.mktemp("explorer")
    consortium, genesis = init_consortium(DEMO_DESCRIPTION, tmp_path, passphrase="pw",
                                          time=datetime.now(UTC).replace(microsecond=0))
    store = Store(f"sqlite:///{tmp_path}/db.sqlite")
    node = LedgerNode(store, genesis, node_key=load_key(consortium.key_path("platform", "node"),
                                                        "pw"),
                      node_org="platform")
    genesis_tx = node.store.txs_in_block(0)[0]
    out = Env("", node, genesis, genesis_tx.tx_id, consortium.key_path)
    batches: list[list[tuple[str, str | None]]] = [
        [("bank-asia", None), ("supplier-sz", None)],
        # A bank-eu admin may not enrol keys for bank-asia: refused when the block is cut.
        [("logistics", None), ("bank-asia", "bank-eu")],
    ]
    for batch in batches:
        for org, author in batch:
            wire = _enrol(consortium.key_path, org, author_org=author, chain_id=genesis.chain_id)
            tx_id = node.submit(wire).tx_id
            if author is not None:
                out.rejected = tx_id
            else:
                out.committed[tx_id] = -1
        node.flush()
    for tx_id in out.committed:
        status = node.status(tx_id)
        assert status is not None and status.status == "committed", status
        assert status.height is not None
        out.committed[tx_id] = status.height
    assert node.head.height == 2

    try:
        with serve_app(create_app(node)) as base_url:
            out.base_url = base_url
            yield out
    finally:
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI")
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def anonymous_page(browser: Browser) -> Iterator[Page]:
    """A fresh page, signed in to nothing."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, env: Env) -> Iterator[Page]:
    """A fresh page signed in as a bank-eu member (it signed the refused transaction);
    fails the test on any script error or console error (CSP included)."""
    with checked_page(browser, allow_status=(400, 404),
                      viewport={"width": 1200, "height": 900}) as pg:
        sign_in(pg, env, "bank-eu")
        yield pg


def run_verify(page: Page) -> tuple[str, str]:
    """Click the verify button; return ("verified" | "not-verified", result text)."""
    page.get_by_role("button", name="Verify in your browser").click()
    page.wait_for_function(
        "() => { const c = document.getElementById('verify-result').classList;"
        " return c.contains('verified') || c.contains('not-verified'); }")
    result = page.locator("#verify-result")
    classes = (result.get_attribute("class") or "").split()
    outcome = "not-verified" if "not-verified" in classes else "verified"
    return outcome, result.inner_text()


def embedded_bundle(page: Page) -> dict[str, Any]:
    text = page.locator("script#bundle").text_content()
    assert text is not None
    bundle: dict[str, Any] = json.loads(text)
    return bundle


def replace_bundle(page: Page, bundle: dict[str, Any]) -> None:
    page.evaluate("b => { document.getElementById('bundle').textContent = JSON.stringify(b); }",
                  bundle)


def _flip(hex_text: str, at: int = 0) -> str:
    c = hex_text[at]
    return hex_text[:at] + ("1" if c == "0" else "0") + hex_text[at + 1:]


# -- browsing -------------------------------------------------------------------


def test_index_block_tx_and_verify(env: Env, page: Page) -> None:
    response = page.goto(f"{env.base_url}/")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "TradeLedger demonstration consortium"
    assert "tradeledger-demo" in page.locator("dl.facts").inner_text()
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 3  # heights 2, 1, 0
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(3)] == ["2", "1", "0"]
    assert rows.nth(0).locator("td").nth(2).inner_text() == "1"  # one committed, one refused
    assert rows.nth(1).locator("td").nth(2).inner_text() == "2"

    rows.nth(1).get_by_role("link", name="1", exact=True).click()
    page.wait_for_url("**/explorer/block/1")
    assert page.locator("h1").inner_text() == "Block 1"
    assert "platform" in page.locator("section", has=page.locator("#cert-heading")).inner_text()
    tx_rows = page.locator("section", has=page.locator("#txs-heading")).locator("tbody tr")
    assert tx_rows.count() == 2
    first = tx_rows.first
    assert first.locator("td").nth(2).inner_text() == "membership.key_enrol"
    assert "bank-asia" in first.locator("td").nth(3).inner_text()

    first.get_by_role("link").click()
    page.wait_for_url("**/explorer/tx/*")
    tx_id = page.url.rsplit("/", 1)[1]
    assert env.committed[tx_id] == 1
    assert page.locator(".badge").inner_text() == "committed"
    body = json.loads(page.locator("#tx-body").inner_text())
    assert body["type"] == "membership.key_enrol" and body["payload"]["org"] == "bank-asia"
    assert page.locator("#verify-result").inner_text() == "Not checked yet."

    outcome, text = run_verify(page)
    assert outcome == "verified", text
    assert text == "Verified: included at height 1, certified by platform"
    assert page.locator("#verify-steps li").count() == 6
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_every_committed_tx_verifies(env: Env, page: Page) -> None:
    expected = {env.genesis_tx_id: 0, **env.committed}
    for tx_id, height in expected.items():
        page.goto(f"{env.base_url}/explorer/tx/{tx_id}")
        outcome, text = run_verify(page)
        assert outcome == "verified", (tx_id, text)
        assert text == f"Verified: included at height {height}, certified by platform"
        # The Python verifier agrees on the very bundle the page embeds.
        record = verify_inclusion_bundle(env.genesis.to_bytes(), embedded_bundle(page))
        assert (record.tx_id, record.height) == (tx_id, height)


def test_search_box(env: Env, page: Page) -> None:
    page.goto(f"{env.base_url}/explorer")
    box = page.get_by_role("searchbox", name="Block height or transaction id")
    box.fill("2")
    box.press("Enter")
    page.wait_for_url("**/explorer/block/2")
    assert page.locator("h1").inner_text() == "Block 2"
    tx_id = next(t for t, h in env.committed.items() if h == 2)
    box = page.get_by_role("searchbox", name="Block height or transaction id")
    box.fill(f"  {tx_id.upper()} ")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**/explorer/tx/{tx_id}")
    assert page.locator(".badge").inner_text() == "committed"


# -- tampering --------------------------------------------------------------------


def test_tampered_hex_digit_in_page_is_not_verified(env: Env, page: Page) -> None:
    tx_id = next(iter(env.committed))
    page.goto(f"{env.base_url}/explorer/tx/{tx_id}")
    # Change one hex digit of the first proof hash, in the page's own script text.
    changed = page.evaluate("""() => {
        const el = document.getElementById('bundle');
        const hash = JSON.parse(el.textContent).inclusion_proof[0];
        const flipped = (hash[0] === '0' ? '1' : '0') + hash.slice(1);
        el.textContent = el.textContent.replace(hash, flipped);
        return el.textContent.includes(flipped);
    }""")
    assert changed
    outcome, text = run_verify(page)
    assert outcome == "not-verified"
    assert text.startswith("NOT verified: root mismatch: header says ")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(bundle: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = bundle
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value(target[int(last)]) if callable(value) else value
        else:
            target[last] = value(target[last]) if callable(value) else value
    return edit


def _leaf_edit(bundle: dict[str, Any]) -> None:
    bundle["leaf"] = bundle["leaf"].replace('"kind":"member"', '"kind":"admin"', 1)


def _drop_last_proof_hash(bundle: dict[str, Any]) -> None:
    bundle["inclusion_proof"].pop()


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "leaf payload": (_leaf_edit, "root mismatch"),
    "proof hash": (_set("inclusion_proof.0", _flip), "root mismatch"),
    "proof too short": (_drop_last_proof_hash, "inclusion proof is too short"),
    "leaf index": (_set("leaf_index", lambda i: i + 1), "root mismatch"),
    "leaf index out of range": (_set("leaf_index", 99), "outside a log of size"),
    "header log root": (_set("header.log_root", _flip),
                        "certificate signs a different block hash than the header's"),
    "header time": (_set("header.time", "2020-01-01T00:00:00Z"),
                    "certificate signs a different block hash than the header's"),
    "certificate signature": (_set("certificate.signatures.0.signature", _flip),
                              "certificate signed by 0/1 required validator organisations"),
    "certificate without signatures": (_set("certificate.signatures", []),
                                       "certificate signed by 0/1 required"),
    "certificate for another height": (_set("certificate.height", 1),
                                       "certificate is for another height"),
    "tx id": (_set("tx_id", _flip), "tx_id is not the hash of the leaf's body"),
    "genesis hash": (_set("genesis_hash", _flip), "bundle names another genesis"),
    "chain id": (_set("chain_id", "another-chain"), "bundle is for another chain"),
    "version": (_set("version", "tradeledger-proof/0"), "not a tradeledger-proof/1"),
    "proof entry not hex": (_set("inclusion_proof.0", "zz" * 32), "inclusion_proof entry"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tampered_bundle_is_not_verified(env: Env, page: Page, name: str) -> None:
    edit, reason = TAMPERS[name]
    # A transaction of block 1 (log size 3 at head 2): its proof has two hashes.
    tx_id = next(t for t, h in env.committed.items() if h == 1)
    page.goto(f"{env.base_url}/explorer/tx/{tx_id}")
    bundle = copy.deepcopy(embedded_bundle(page))
    edit(bundle)
    with pytest.raises(BundleError) as python_error:
        verify_inclusion_bundle(env.genesis.to_bytes(), bundle)
    assert reason in str(python_error.value)
    replace_bundle(page, bundle)
    outcome, text = run_verify(page)
    assert outcome == "not-verified", text
    assert text.startswith("NOT verified: ") and reason in text
    assert "Failed: " in page.locator("#verify-steps li.failed").inner_text()


def test_valid_bundle_of_another_tx_is_not_verified(env: Env, page: Page) -> None:
    shown, other = list(env.committed)[:2]
    page.goto(f"{env.base_url}/explorer/tx/{other}")
    other_bundle = embedded_bundle(page)
    page.goto(f"{env.base_url}/explorer/tx/{shown}")
    replace_bundle(page, other_bundle)
    outcome, text = run_verify(page)
    assert outcome == "not-verified"
    assert text == (f"NOT verified: the bundle proves transaction {other}, "
                    f"not {shown} shown on this page")


def test_tampered_genesis_is_not_verified(env: Env, page: Page) -> None:
    tx_id = next(iter(env.committed))
    page.goto(f"{env.base_url}/explorer/tx/{tx_id}")
    page.evaluate("""() => {
        const el = document.getElementById('genesis');
        const doc = JSON.parse(el.textContent);
        doc.transaction.body.payload.quorum.validators = ['bank-asia'];
        el.textContent = JSON.stringify(doc);
    }""")
    outcome, text = run_verify(page)
    assert outcome == "not-verified"
    # The genesis header commits to its transaction, so an edited validator list
    # is refused before any signature is looked at.
    assert text == "NOT verified: genesis header does not commit to its transaction"


# -- errors and other statuses ------------------------------------------------------


def test_unknown_block_is_a_404_page(env: Env, page: Page) -> None:
    response = page.goto(f"{env.base_url}/explorer/block/999")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == "Block not found"
    assert "no block at height 999" in page.locator("main").inner_text()
    page.get_by_role("link", name="Back to the latest blocks").click()
    page.wait_for_url("**/explorer")


@pytest.mark.parametrize(("path", "status", "title"), [
    ("/explorer/block/abc", 400, "Not a block height"),
    ("/explorer/block/-1", 400, "Not a block height"),
    ("/explorer/block/99999999999999999999999", 400, "Not a block height"),
    ("/explorer/tx/xyz", 400, "Not a transaction id"),
    ("/explorer/tx/" + "A" * 64, 400, "Not a transaction id"),
    ("/explorer/tx/" + "0" * 64, 404, "Transaction not found"),
    ("/explorer/search?q=hello", 400, "Nothing to look up"),
    ("/explorer?before=x", 400, "Not a block height"),
])
def test_error_pages(env: Env, page: Page, path: str, status: int, title: str) -> None:
    response = page.goto(f"{env.base_url}{path}")
    assert response is not None and response.status == status
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == title


def test_rejected_tx_page(env: Env, page: Page) -> None:
    response = page.goto(f"{env.base_url}/explorer/tx/{env.rejected}")
    assert response is not None and response.status == 200
    assert page.locator(".badge").inner_text() == "rejected"
    assert "not_org_admin" in page.locator("table.fields").inner_text()
    assert page.locator("#verify-button").count() == 0
    assert page.locator("script#bundle").count() == 0


def test_older_blocks_pager(env: Env, page: Page) -> None:
    page.goto(f"{env.base_url}/explorer?before=2")
    assert page.locator("h2#blocks-heading").inner_text() == "Older blocks"
    heights = page.locator("table.list tbody tr td:first-child").all_inner_texts()
    assert heights == ["1", "0"]


# -- sign-in and need-to-know --------------------------------------------------------


def test_anonymous_visitor_sees_only_the_sign_in_page(env: Env, anonymous_page: Page) -> None:
    tx_id = next(iter(env.committed))
    for path in ("/", "/explorer/block/1", f"/explorer/tx/{tx_id}"):
        response = anonymous_page.goto(f"{env.base_url}{path}")
        assert response is not None and response.status == 401, path
        assert anonymous_page.locator("h1").inner_text() == "Sign in to see the ledger"
        assert tx_id not in anonymous_page.content()


def test_sign_in_link_opens_a_session_once_and_sign_out_ends_it(env: Env,
                                                                anonymous_page: Page) -> None:
    url = env.login_url("supplier-sz")
    response = anonymous_page.goto(url)
    assert response is not None and response.status == 200
    assert anonymous_page.locator(".who").get_attribute("data-org") == "supplier-sz"
    anonymous_page.get_by_role("link", name="Sign out").click()
    assert anonymous_page.locator("h1").inner_text() == "Sign in to see the ledger"
    # The same link does not work twice.
    again = anonymous_page.goto(url)
    assert again is not None and again.status == 401
    assert "used before" in anonymous_page.locator("main").inner_text()


def test_refused_transaction_is_visible_only_to_its_signer(env: Env,
                                                            anonymous_page: Page) -> None:
    sign_in(anonymous_page, env, "supplier-sz")
    response = anonymous_page.goto(f"{env.base_url}/explorer/tx/{env.rejected}")
    assert response is not None and response.status == 404
    assert anonymous_page.locator("h1").inner_text() == "Transaction not found"
