"""The browser verifier (node/static/verify.js) follows validator-set changes too.

The bundles of tests/test_validator_changes.py, checked by the page's
``TradeLedgerVerify.verifyInclusionBundle`` in headless Chromium: the honest
bundle passes against the new validator set; a head certified only by the
removed validator, or a tampered chain of changes, fails as in ``client.verify``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.verify import BundleError, verify_inclusion_bundle
from tests.harness.browser import chromium_available, chromium_browser
from tests.test_validator_changes import (
    GENESIS_BYTES,
    _bundle_after_change,
    _dropped_write,
    _forged_by_bank_a,
    _prev_header,
    _threshold_one,
    _uncertified,
    changed_chain,
)

pytestmark = pytest.mark.browser

VERIFY_JS = Path(__file__).resolve().parents[1] / "node" / "static" / "verify.js"


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    reason = chromium_available()
    if reason is not None:
        pytest.skip(reason)
    with chromium_browser() as browser:
        tab = browser.new_page()
        # A loopback origin is a secure context, so WebCrypto is there; the page is
        # served by the route handler, no server listens.
        tab.route("http://127.0.0.1/**", lambda route: route.fulfill(
            body="<!doctype html><title>verify</title>", content_type="text/html"))
        tab.goto("http://127.0.0.1/verify")
        tab.add_script_tag(content=VERIFY_JS.read_text(encoding="utf-8"))
        yield tab
        tab.close()


def _in_browser(page: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("""async ([genesis, bundle]) => {
        try {
            const r = await window.TradeLedgerVerify.verifyInclusionBundle(genesis, bundle);
            return {ok: true, signedBy: r.signedBy};
        } catch (err) {
            return {ok: false, error: String(err.message)};
        }
    }""", [json.loads(GENESIS_BYTES), bundle])
    return result


def test_the_browser_follows_the_chain_of_validator_changes(page: Any, tmp_path: Path) -> None:
    bundle = _bundle_after_change(changed_chain(f"sqlite:///{tmp_path / 'ledger.db'}"))
    honest = _in_browser(page, bundle)
    assert honest["ok"], honest
    assert sorted(honest["signedBy"]) == ["bank-b", "platform"]
    forged = _in_browser(page, _forged_by_bank_a(bundle))
    assert not forged["ok"] and "0/2" in forged["error"]
    for mutate in (_threshold_one, _uncertified, _prev_header, _dropped_write):
        changed = copy.deepcopy(bundle)
        mutate(changed["validator_changes"][0])
        found = _in_browser(page, changed)
        assert not found["ok"] and "validator_changes[0]" in found["error"], mutate.__name__
        with pytest.raises(BundleError, match=r"validator_changes\[0\]"):
            verify_inclusion_bundle(GENESIS_BYTES, changed)
