"""Need-to-know reads (specs/read-policy.md), endpoint by endpoint.

Two competing suppliers sell to two buyers on one node. Neither supplier can
read the other's orders and invoices through any endpoint: status by id, proof
bundle, record list, block contents, explorer pages; and anonymous callers reach
only the public verification endpoints. Then the request signatures
themselves: replays, stale times, other bodies, other paths, revoked keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from client.sdk import Client, NodeError, RequestSigner, TxBuilder
from client.verify import verify_inclusion_bundle
from ledger.access import sign_request
from ledger.keys import Domain
from node.app import create_app
from tests.helpers import make_node

SZ, HCM = "supplier-sz", "supplier-hcm"
NL, FR = "buyer-rotterdam", "buyer-lyon"


@pytest.fixture
def market(demo_consortium: Any, db_url: str) -> Iterator[dict[str, Any]]:
    """Each supplier has one order and one invoice with its own buyer."""
    _c, genesis, orgs = demo_consortium
    node = make_node(demo_consortium, db_url, block_interval=0.01)
    app = create_app(node, start_orderer=False)
    http = TestClient(app)

    def builder(org: str) -> TxBuilder:
        return TxBuilder(orgs[org].member, chain_id=genesis.chain_id)

    day = date(2026, 3, 2).isoformat()
    due = date(2026, 4, 1).isoformat()
    records: dict[str, Any] = {}
    for seller, buyer, tag in ((SZ, NL, "SZ"), (HCM, FR, "HCM")):
        order = builder(buyer).build("trade.order", {
            "order_id": f"PO-{tag}", "buyer": buyer, "seller": seller, "currency": "EUR",
            "total": 900_000}, cosigners=[orgs[seller].member])
        invoice = builder(seller).build("trade.invoice", {
            "invoice_id": f"INV-{tag}", "order_id": f"PO-{tag}", "amount": 900_000,
            "currency": "EUR", "issue_date": day, "due_date": due, "payment_terms": "NET30"})
        node.submit(order.to_wire())
        node.cut_block()
        node.submit(invoice.to_wire())
        node.cut_block()
        records[tag] = {"order": order, "invoice": invoice}
    clients = {org: Client(http=http, genesis=genesis.to_bytes(), key=orgs[org].member)
               for org in (SZ, HCM, NL, FR, "bank-eu")}
    try:
        yield {"node": node, "http": http, "clients": clients, "records": records,
               "orgs": orgs, "genesis": genesis, "builder": builder}
    finally:
        http.close()


def _not_found(call: Any) -> NodeError:
    with pytest.raises(NodeError) as caught:
        call()
    assert caught.value.status == 404, caught.value.problem
    return caught.value


def test_a_supplier_reads_its_own_invoice_and_its_proof(market: dict[str, Any]) -> None:
    sz = market["clients"][SZ]
    invoice = market["records"]["SZ"]["invoice"]
    shown = sz.tx(invoice.tx_id_hex)
    assert shown["status"] == "committed"
    assert shown["transaction"]["body"]["payload"]["invoice_id"] == "INV-SZ"
    record = verify_inclusion_bundle(market["genesis"].to_bytes(), sz.proof(invoice.tx_id_hex))
    assert record.tx_id == invoice.tx_id_hex
    # The buyer named on it reads it too.
    assert market["clients"][NL].tx(invoice.tx_id_hex)["status"] == "committed"


@pytest.mark.parametrize("tag,reader", [("SZ", HCM), ("HCM", SZ), ("SZ", FR), ("HCM", "bank-eu")])
def test_no_endpoint_shows_another_organisations_trade(market: dict[str, Any], tag: str,
                                                       reader: str) -> None:
    client: Client = market["clients"][reader]
    node = market["node"]
    for kind in ("order", "invoice"):
        tx = market["records"][tag][kind]
        tx_id = tx.tx_id_hex
        # Get by id and proof: the same 404 as for an id nobody ever used.
        hidden = _not_found(lambda: client.tx(tx_id))  # noqa: B023
        unknown = _not_found(lambda: client.tx("ab" * 32))
        assert hidden.code == unknown.code == "unknown_tx"
        assert _not_found(lambda: client.proof(tx_id)).code == "unknown_tx"  # noqa: B023
        # Block contents: the block is listed, its other party's record is not.
        height = node.status(tx_id).height
        block = client.block(height)
        assert block["tx_count"] == 1
        assert block["transactions"] == []
        # Lists.
        listed = {r["tx_id"] for r in client.records(limit=500)["records"]}
        assert tx_id not in listed
        # Explorer pages, signed in as the reader.
        explorer = TestClient(market["http"].app)
        login = explorer.get("/" + client.explorer_login_url().split("/", 3)[3])
        assert login.status_code == 200 and f'data-org="{reader}"' in login.text
        page = explorer.get(f"/explorer/tx/{tx_id}")
        assert page.status_code == 404 and "Transaction not found" in page.text
        block_page = explorer.get(f"/explorer/block/{height}")
        assert block_page.status_code == 200
        assert tx_id not in block_page.text
        assert "not shown to" in block_page.text
        explorer.close()


def test_record_lists_hold_own_and_public_records_only(market: dict[str, Any]) -> None:
    sz: Client = market["clients"][SZ]
    listed = sz.records(limit=500)["records"]
    types = {r["type"] for r in listed}
    assert types == {"membership.genesis", "trade.order", "trade.invoice"}
    own = {market["records"]["SZ"][k].tx_id_hex for k in ("order", "invoice")}
    assert {r["tx_id"] for r in listed if r["type"].startswith("trade.")} == own
    invoices = sz.records(tx_type="trade.invoice")["records"]
    assert [r["tx_id"] for r in invoices] == [market["records"]["SZ"]["invoice"].tx_id_hex]
    # Paging goes back through older records without repeating any.
    first = sz.records(limit=1)
    rest = sz.records(before=first["next_before"], limit=500)["records"]
    assert first["records"][0]["tx_id"] not in {r["tx_id"] for r in rest}
    assert len(rest) == len(listed) - 1


def test_pending_and_refused_statuses_are_shown_to_their_signers_only(
        market: dict[str, Any]) -> None:
    node = market["node"]
    builder = market["builder"]
    pay = builder(NL).build("trade.payment", {
        "payment_id": "PAY-1", "invoice_id": "INV-SZ", "amount": 100_000, "currency": "EUR",
        "value_date": "2026-03-20"})
    market["clients"][NL].submit(pay)
    assert market["clients"][NL].tx(pay.tx_id_hex)["status"] == "pending"
    _not_found(lambda: market["clients"][HCM].tx(pay.tx_id_hex))
    # A payment above the open balance is refused when the block is cut.
    over = builder(NL).build("trade.payment", {
        "payment_id": "PAY-2", "invoice_id": "INV-SZ", "amount": 5_000_000,
        "currency": "EUR", "value_date": "2026-03-21"})
    market["clients"][NL].submit(over)
    node.cut_block()
    assert market["clients"][NL].tx(pay.tx_id_hex)["status"] == "committed"
    refused = market["clients"][NL].tx(over.tx_id_hex)
    assert refused["status"] == "rejected"
    _not_found(lambda: market["clients"][HCM].tx(over.tx_id_hex))
    # The seller is a party of the committed payment, not a signer of the refused one.
    assert market["clients"][SZ].tx(pay.tx_id_hex)["status"] == "committed"
    _not_found(lambda: market["clients"][SZ].tx(over.tx_id_hex))


def test_a_proof_bundle_carries_nothing_of_other_records(market: dict[str, Any]) -> None:
    sz: Client = market["clients"][SZ]
    invoice = market["records"]["SZ"]["invoice"]
    bundle = sz.proof(invoice.tx_id_hex)
    assert set(bundle) == {"version", "kind", "chain_id", "genesis_hash", "tx_id", "height",
                           "leaf_index", "leaf", "inclusion_proof", "header", "certificate"}
    others = [market["records"]["HCM"][k].tx_id_hex for k in ("order", "invoice")]
    text = str(bundle)
    assert all(o not in text for o in others)
    assert all(len(h) == 64 for h in bundle["inclusion_proof"])


# -- anonymous callers ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/tx/" + "ab" * 32, "/v1/records", "/v1/blocks",
                                  "/v1/blocks/1", "/v1/headers/1", "/v1/proof/tx/" + "ab" * 32,
                                  "/v1/proof/consistency?old_size=1"])
def test_anonymous_reads_are_refused(market: dict[str, Any], path: str) -> None:
    response = market["http"].get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_anonymous_submission_is_refused_and_changes_nothing(market: dict[str, Any]) -> None:
    node = market["node"]
    tx = market["builder"](SZ).build("trade.order", {
        "order_id": "PO-ANON", "buyer": NL, "seller": SZ, "currency": "EUR", "total": 1})
    before = node.store.tx_count()
    response = market["http"].post("/v1/tx", json=tx.to_wire())
    assert response.status_code == 401
    node.cut_block()
    assert node.store.tx_count() == before
    assert market["http"].post("/v1/tx/batch", json={"transactions": [tx.to_wire()]}
                               ).status_code == 401


def test_public_endpoints_need_no_signature(market: dict[str, Any]) -> None:
    http = market["http"]
    assert http.get("/health").status_code == 200
    assert http.get("/v1/genesis").content == market["genesis"].to_bytes()
    assert http.get("/v1/certificate/latest").status_code == 200


# -- the signatures themselves ------------------------------------------------------------


def _signed_get(market: dict[str, Any], path: str, *, org: str = SZ, **overrides: Any
                ) -> Any:
    key = overrides.pop("key", market["orgs"][org].member)
    now = overrides.pop("time", datetime.now(UTC)) + overrides.pop("offset", timedelta(0))
    headers = sign_request(key, chain_id=overrides.pop("chain_id", "tradeledger-demo"),
                           method=overrides.pop("method", "GET"),
                           target=overrides.pop("target", path), body=overrides.pop("body", b""),
                           time=now, nonce=overrides.pop("nonce", "n" * 16 + str(now.timestamp())
                                                         .replace(".", "-")))
    headers.update(overrides.pop("headers", {}))
    return market["http"].get(path, headers=headers)


def test_a_replayed_request_is_refused(market: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    first = _signed_get(market, "/v1/records", time=now, nonce="replay-nonce-0001")
    assert first.status_code == 200
    again = _signed_get(market, "/v1/records", time=now, nonce="replay-nonce-0001")
    assert again.status_code == 401 and again.json()["code"] == "replayed_request"


@pytest.mark.parametrize("case,overrides,code", [
    ("stale time", {"offset": -timedelta(minutes=6)}, "stale_request"),
    ("future time", {"offset": timedelta(minutes=6)}, "stale_request"),
    ("other path", {"target": "/v1/blocks"}, "bad_request_signature"),
    ("other query", {"target": "/v1/records?limit=2"}, "bad_request_signature"),
    ("other method", {"method": "POST"}, "bad_request_signature"),
    ("other body", {"body": b"{}"}, "bad_request_signature"),
    ("other chain", {"chain_id": "another-chain"}, "bad_request_signature"),
])
def test_a_signature_binds_time_path_method_body_and_chain(
        market: dict[str, Any], case: str, overrides: dict[str, Any], code: str) -> None:
    response = _signed_get(market, "/v1/records", **overrides)
    assert response.status_code == 401, case
    assert response.json()["code"] == code, case


def test_a_transaction_domain_signature_is_no_request_signature(market: dict[str, Any]
                                                                ) -> None:
    key = market["orgs"][SZ].member
    good = _signed_get(market, "/v1/records")
    assert good.status_code == 200
    forged = key.sign(Domain.TX, b"\x00" * 32).hex()
    response = _signed_get(market, "/v1/records", headers={"TL-Signature": forged})
    assert response.status_code == 401 and response.json()["code"] == "bad_request_signature"


@pytest.mark.parametrize("header,value,field", [
    ("TL-Key", "XYZ", "TL-Key"),
    ("TL-Time", "yesterday", "TL-Time"),
    ("TL-Time", "2026-03-02T10:00:00.500000Z", "TL-Time"),
    ("TL-Nonce", "short", "TL-Nonce"),
    ("TL-Signature", "00", "TL-Signature"),
])
def test_malformed_auth_headers_are_400_naming_the_header(market: dict[str, Any], header: str,
                                                          value: str, field: str) -> None:
    response = _signed_get(market, "/v1/records", headers={header: value})
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_a_partial_set_of_headers_names_the_missing_one(market: dict[str, Any]) -> None:
    key = market["orgs"][SZ].member
    response = market["http"].get("/v1/records", headers={"TL-Key": key.key_id})
    assert response.status_code == 401
    assert "TL-Time" in response.json()["message"]


def test_node_keys_and_revoked_keys_cannot_read(market: dict[str, Any]) -> None:
    orgs = market["orgs"]
    node_key = _signed_get(market, "/v1/records", key=orgs["platform"].node)
    assert node_key.status_code == 401 and node_key.json()["code"] == "node_key"
    # Revoke supplier-hcm's member key: its next request is refused.
    node = market["node"]
    revoke = TxBuilder(orgs[HCM].admin, chain_id="tradeledger-demo").build(
        "membership.key_revoke", {"key_id": orgs[HCM].member.key_id, "reason": "test"})
    assert _signed_get(market, "/v1/records", org=HCM).status_code == 200
    node.submit(revoke.to_wire())
    node.cut_block()
    response = _signed_get(market, "/v1/records", org=HCM)
    assert response.status_code == 401 and response.json()["code"] == "key_revoked"


def test_request_signer_is_a_plain_httpx_auth(market: dict[str, Any]) -> None:
    signer = RequestSigner(market["orgs"][SZ].member, chain_id="tradeledger-demo")
    response = market["http"].get("/v1/records", params={"limit": 3}, auth=signer)
    assert response.status_code == 200 and len(response.json()["records"]) == 3


def test_ratings_answer_signed_suppliers_and_banks_only(market: dict[str, Any]) -> None:
    # The rating routes sit behind the same signed-request check as every read.
    rating = market["clients"][HCM].rating(NL)
    assert rating["buyer"] == NL and rating["status"] == "insufficient"
    assert market["clients"]["bank-eu"].rating(NL)["buyer"] == NL
    with pytest.raises(NodeError) as caught:
        market["clients"][FR].rating(NL)
    assert caught.value.status == 403
    assert market["http"].get(f"/v1/ratings/{NL}").status_code == 401
