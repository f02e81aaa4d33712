"""Sealed details on real nodes: a party's node checks its copies; a non-party's holds
only ciphertext and hashes (issue 4, item 6; specs/trade.md#confidential-details).

Two competing suppliers sell to the same buyers. Every transaction is submitted
to the platform's node (a party to none of the trades) and to one supplier's
node, as the network delivers every block to every node; then every table and
row of their databases is searched for the plaintext of the line items.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from client.confidential import (
    ConfidentialError,
    encryption_keys,
    open_record,
    seal,
    sealed_invoice,
    sealed_order,
)
from client.consortium import init_consortium
from client.sdk import Client, NodeError, TxBuilder
from ledger.audit import audit, rebuild_derived
from ledger.block import sign_checkpoint
from ledger.errors import Conflict
from ledger.keys import EncryptionKey, load_encryption_key, load_key
from ledger.store import Store
from ledger.tx import SignedTx
from node.app import create_app
from node.service import LedgerNode
from tests.helpers import OPEN_STORES

PASSPHRASE = "market-passphrase"
MARKET = {
    "chain_id": "tl-market",
    "name": "Two competing suppliers",
    "quorum": {"validators": ["platform"], "threshold": 1},
    "organisations": [
        {"id": "platform", "name": "Platform", "country": "SG", "roles": ["platform"],
         "node": True},
        {"id": "supplier-north", "name": "North Cells", "country": "KR",
         "roles": ["supplier"], "node": True},
        {"id": "supplier-south", "name": "South Cells", "country": "VN",
         "roles": ["supplier"], "node": True},
        {"id": "buyer-east", "name": "East Motors", "country": "DE", "roles": ["buyer"]},
        {"id": "buyer-west", "name": "West Scooters", "country": "FR", "roles": ["buyer"]},
    ],
}


class Market:
    def __init__(self, root: Path) -> None:
        self.consortium, self.genesis = init_consortium(
            MARKET, root, passphrase=PASSPHRASE, time=datetime(2026, 1, 5, tzinfo=UTC))
        self.ids = [o["id"] for o in MARKET["organisations"]]
        self.member = {o: load_key(self.consortium.key_path(o, "member1"), PASSPHRASE)
                       for o in self.ids}
        self.node_key = {o: load_key(self.consortium.key_path(o, "node"), PASSPHRASE)
                         for o in ("platform", "supplier-north", "supplier-south")}
        self.secret = {o: load_encryption_key(self.consortium.encryption_key_path(o),
                                              PASSPHRASE) for o in self.ids}
        self.public = encryption_keys(self.genesis.to_bytes())

    def builder(self, org: str) -> TxBuilder:
        return TxBuilder(self.member[org], chain_id=self.genesis.chain_id)

    def node(self, url: str, org: str, *, key: EncryptionKey | None = None) -> LedgerNode:
        store = Store(url)
        OPEN_STORES.append(store)
        return LedgerNode(store, self.genesis, node_key=self.node_key[org], node_org=org,
                          encryption_key=key)

    def order(self, order_id: str, buyer: str, seller: str, details: Mapping[str, Any],
              **extra: Any) -> SignedTx:
        payload = sealed_order(order_id=order_id, buyer=buyer, seller=seller,
                               currency="EUR", details=details, keys=self.public)
        payload.update(extra)
        return self.builder(buyer).build("trade.order", payload,
                                         cosigners=[self.member[seller]])

    def invoice(self, invoice_id: str, order_id: str, buyer: str, seller: str,
                details: Mapping[str, Any]) -> SignedTx:
        today = date.today()
        return self.builder(seller).build("trade.invoice", sealed_invoice(
            invoice_id=invoice_id, order_id=order_id, buyer=buyer, seller=seller,
            currency="EUR", issue_date=today.isoformat(),
            due_date=(today + timedelta(days=30)).isoformat(), payment_terms="NET30",
            details=details, keys=self.public))


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Market:
    return Market(tmp_path_factory.mktemp("market"))


def _line(sku: str, description: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {"sku": sku, "description": description, "quantity": quantity, "unit": "EA",
            "unit_price": unit_price}


NORTH_LINES = {"line_items": [
    _line("NC-CATH-811", "Nickel-rich cathode sheet NMC811", 1_200, 48_317),
    _line("NC-SEP-16", "Ceramic-coated separator film 16um", 3_000, 2_963)],
    "bank_terms": {"bank": "Hanil Trade Bank", "account": "KR-301-7730-991244"}}
SOUTH_LINES = {"line_items": [
    _line("SC-CATH-LFP", "Lithium iron phosphate cathode sheet", 1_500, 31_877),
    _line("SC-SEP-20", "Polyolefin separator roll 20um", 2_400, 2_491)],
    "bank_terms": {"bank": "Mekong Commercial Bank", "account": "VN-88-1002-55713"}}
SOUTH_WEST_LINES = {"line_items": [
    _line("SC-PACK-48V", "48 V scooter battery pack, 20 Ah", 300, 18_953)]}


def _needles(details: Mapping[str, Any]) -> list[bytes]:
    """What would betray the details: names, prices, bank terms, as any JSON would hold them."""
    found: list[bytes] = []
    for line in details["line_items"]:
        found += [line["description"].encode(), line["sku"].encode(),
                  f'"unit_price":{line["unit_price"]}'.encode(),
                  f'"unit_price": {line["unit_price"]}'.encode()]
    for value in details.get("bank_terms", {}).values():
        found.append(value.encode())
    return found


def _plaintext_encodings(details: Mapping[str, Any]) -> list[bytes]:
    """The first product name in hex and base64 (any alignment), should a node store those."""
    name = details["line_items"][0]["description"].encode()
    out = [name.hex().encode()]
    for shift in range(3):
        out.append(base64.b64encode(b"\x00" * shift + name)[4:28])
    return out


def _rows(store: Store) -> Iterator[tuple[str, bytes]]:
    """Every value of every row of every table in the database, as bytes."""
    tables = inspect(store.engine).get_table_names()
    assert {"block", "tx", "state", "tx_party", "receipt", "merkle_node",
            "checkpoint_sig", "confidential_check"} <= set(tables)
    with store.engine.connect() as conn:
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    yield table, value if isinstance(value, bytes) else str(value).encode()


def _where(store: Store, needles: list[bytes]) -> dict[bytes, set[str]]:
    hits: dict[bytes, set[str]] = {}
    for table, value in _rows(store):
        for needle in needles:
            if needle in value:
                hits.setdefault(needle, set()).add(table)
    return hits


def _commit(nodes: list[LedgerNode], txs: list[SignedTx], market: Market) -> None:
    """Each node orders and executes ``txs`` as one block, which the validator certifies."""
    for node in nodes:
        for tx in txs:
            assert node.submit(tx.to_wire()).status == "pending"
        header = node.cut_block()
        assert header is not None
        if node.node_org != "platform":  # the validator's checkpoint, as a peer sends it
            node.store.add_checkpoint_signature(header.height, header.hash, sign_checkpoint(
                header, market.node_key["platform"], "platform"))
        for tx in txs:
            status = node.status(tx.tx_id_hex)
            assert status is not None and status.status == "committed", status


def test_a_non_party_node_stores_only_ciphertext_of_the_competitors_details(
        market: Market, db_url: str, tmp_path: Path) -> None:
    platform = market.node(db_url, "platform", key=market.secret["platform"])
    north = market.node(f"sqlite:///{tmp_path / 'north.db'}", "supplier-north",
                        key=market.secret["supplier-north"])
    north_order = market.order("PO-N-1", "buyer-east", "supplier-north", NORTH_LINES)
    south_order = market.order("PO-S-1", "buyer-east", "supplier-south", SOUTH_LINES)
    west_order = market.order("PO-S-2", "buyer-west", "supplier-south", SOUTH_WEST_LINES)
    _commit([platform, north], [north_order, south_order, west_order], market)
    north_invoice = market.invoice("INV-N-1", "PO-N-1", "buyer-east", "supplier-north",
                                   NORTH_LINES)
    south_invoice = market.invoice("INV-S-1", "PO-S-1", "buyer-east", "supplier-south",
                                   SOUTH_LINES)
    _commit([platform, north], [north_invoice, south_invoice], market)

    # The platform's node is a party to none of these trades: no plaintext, in any form,
    # in any table.
    every_trade = [NORTH_LINES, SOUTH_LINES, SOUTH_WEST_LINES]
    secrets = [n for d in every_trade for n in _needles(d) + _plaintext_encodings(d)]
    assert _where(platform.store, secrets) == {}
    # The competing supplier's node holds none of the south's details, and a node
    # keeps no plaintext even of its own organisation's trades.
    assert _where(north.store, secrets) == {}
    # The scan does read what is there: ciphertext and commitment, in the chain and state.
    sealed = north_order.body.payload["confidential"]
    visible = _where(platform.store, [sealed["commitment"].encode(),
                                      sealed["sealed"]["buyer-east"][:40].encode(),
                                      b"PO-N-1", b"INV-S-1"])
    assert {"tx", "state"} <= visible[sealed["commitment"].encode()]
    assert len(visible) == 4

    # The parties open their copies through the non-party's API, each signed in with
    # its own member key.
    with TestClient(create_app(platform, start_orderer=False)) as http:
        def as_member(org: str) -> Client:
            return Client(http=http, genesis=market.genesis.to_bytes(), key=market.member[org])

        for tx, details, parties in (
                (north_order, NORTH_LINES, ("buyer-east", "supplier-north")),
                (south_invoice, SOUTH_LINES, ("buyer-east", "supplier-south")),
                (west_order, SOUTH_WEST_LINES, ("buyer-west", "supplier-south"))):
            for org in parties:
                status = as_member(org).tx(tx.tx_id_hex)
                assert open_record(status, org, market.secret[org]) == details
        # The competitor cannot: the node does not show it the record, no copy is
        # sealed to it, and its key opens none.
        with pytest.raises(NodeError) as hidden:
            as_member("supplier-north").tx(south_order.tx_id_hex)
        assert hidden.value.status == 404
        seen_by_buyer = as_member("buyer-east").tx(south_order.tx_id_hex)
        with pytest.raises(ConfidentialError) as refused:
            open_record(seen_by_buyer, "supplier-north", market.secret["supplier-north"])
        assert refused.value.code == "not_addressed"
        with pytest.raises(ConfidentialError) as foreign:
            open_record(seen_by_buyer, "buyer-east", market.secret["supplier-north"])
        assert foreign.value.code == "unreadable"
        # The platform's node is addressed by nothing.
        check = as_member("buyer-east").confidential(north_order.tx_id_hex)
        assert (check["org"], check["checked_by_node"]) == ("platform", "not_addressed")

    # The north's node verified its own copies and was sent none of the south's.
    with TestClient(create_app(north, start_orderer=False)) as http:
        for tx, outcome, reader in (
                (north_order, "verified", "supplier-north"),
                (north_invoice, "verified", "supplier-north"),
                (south_order, "not_addressed", "buyer-east"),
                (south_invoice, "not_addressed", "buyer-east"),
                (west_order, "not_addressed", "buyer-west")):
            check = Client(http=http, key=market.member[reader]).confidential(tx.tx_id_hex)
            assert (check["org"], check["checked_by_node"]) == ("supplier-north", outcome)
            assert north.store.confidential_check(tx.tx_id_hex).outcome == outcome
        with pytest.raises(NodeError) as hidden:  # the north's members see none of that
            Client(http=http, key=market.member["supplier-north"]).confidential(
                south_order.tx_id_hex)
        assert hidden.value.status == 404

    # Control: text that IS written in the clear is found by the same scan.
    control = market.builder("buyer-east").build("trade.dispute_open", {
        "dispute_id": "D-1", "invoice_id": "INV-N-1",
        "reason": "Sentinel disclosed in clear: 4417 cartons"})
    _commit([platform], [control], market)
    assert _where(platform.store, [b"Sentinel disclosed in clear"]) == {
        b"Sentinel disclosed in clear": {"tx", "state"}}


def test_the_sqlite_files_hold_no_plaintext_either(market: Market, tmp_path: Path) -> None:
    path = tmp_path / "platform.db"
    platform = market.node(f"sqlite:///{path}", "platform")
    order = market.order("PO-N-9", "buyer-west", "supplier-north", NORTH_LINES)
    _commit([platform], [order], market)
    platform.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("platform.db*"))
    assert b"PO-N-9" in raw  # the disclosed order id is in the file
    for needle in _needles(NORTH_LINES):
        assert needle not in raw


def test_a_party_node_flags_a_mismatching_commitment(
        market: Market, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    north = market.node(db_url, "supplier-north", key=market.secret["supplier-north"])
    good = market.order("PO-G", "buyer-east", "supplier-north", NORTH_LINES)
    # The buyer commits to one set of details but seals other ones: the contracts
    # cannot see it; the north's node can.
    lying = sealed_order(order_id="PO-L", buyer="buyer-east", seller="supplier-north",
                         currency="EUR", details=NORTH_LINES, keys=market.public)
    lying["confidential"]["commitment"] = seal(SOUTH_LINES, {
        "buyer-east": market.public["buyer-east"]})["commitment"]
    mismatch = market.builder("buyer-east").build("trade.order", lying,
                                                  cosigners=[market.member["supplier-north"]])
    garbled = sealed_order(order_id="PO-T", buyer="buyer-east", seller="supplier-north",
                           currency="EUR", details=NORTH_LINES, keys=market.public)
    box = bytearray(base64.b64decode(garbled["confidential"]["sealed"]["supplier-north"]))
    box[-1] ^= 0x01
    garbled["confidential"]["sealed"]["supplier-north"] = base64.b64encode(box).decode()
    tampered = market.builder("buyer-east").build("trade.order", garbled,
                                                  cosigners=[market.member["supplier-north"]])
    plain = market.builder("buyer-east").build("trade.order", {
        "order_id": "PO-P", "buyer": "buyer-east", "seller": "supplier-north",
        "currency": "EUR", "total": 1000}, cosigners=[market.member["supplier-north"]])
    with caplog.at_level(logging.WARNING, logger="tradeledger.node.confidential"):
        _commit([north], [good, mismatch, tampered, plain], market)
    flagged = [r.getMessage() for r in caplog.records]
    assert any(mismatch.tx_id_hex in m and "commitment" in m for m in flagged)
    assert any(tampered.tx_id_hex in m for m in flagged)
    assert not any(good.tx_id_hex in m for m in flagged)

    with TestClient(create_app(north, start_orderer=False)) as http:
        client = Client(http=http, key=market.member["supplier-north"])

        def check(tx: SignedTx) -> dict[str, Any]:
            return client.confidential(tx.tx_id_hex)

        assert check(good)["checked_by_node"] == "verified"
        found = check(mismatch)
        assert found["checked_by_node"] == "mismatch"
        assert "not to the committed" in found["detail"] and found["checked_at"]
        assert check(tampered)["checked_by_node"] == "unreadable"
        for tx_id, status, code in ((plain.tx_id_hex, 404, "no_confidential_details"),
                                    ("xyz", 400, "malformed"),
                                    ("0" * 64, 404, "unknown_tx")):
            with pytest.raises(NodeError) as refused:
                client.confidential(tx_id)
            assert (refused.value.status, refused.value.code) == (status, code)
        # A non-party gets the answer of an unknown id; an anonymous caller, 401.
        with pytest.raises(NodeError) as hidden:
            Client(http=http, key=market.member["supplier-south"]).confidential(
                mismatch.tx_id_hex)
        assert (hidden.value.status, hidden.value.code) == (404, "unknown_tx")
        assert http.get(f"/v1/tx/{good.tx_id_hex}/confidential").status_code == 401

    # The outcomes are node-local: the audit is clean and a rebuild leaves them alone.
    assert audit(north.store, workers=1).ok
    rebuild_derived(north.store, workers=1)
    assert audit(north.store, workers=1).ok
    assert north.store.confidential_check(mismatch.tx_id_hex).outcome == "mismatch"


def test_a_node_checks_on_start_what_it_committed_without_its_key(
        market: Market, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'south.db'}"
    south = market.node(url, "supplier-south")
    order = market.order("PO-K", "buyer-west", "supplier-south", SOUTH_WEST_LINES)
    _commit([south], [order], market)
    with TestClient(create_app(south, start_orderer=False)) as http:
        client = Client(http=http, key=market.member["supplier-south"])
        assert client.confidential(order.tx_id_hex)["checked_by_node"] == "unchecked"
    south.store.close()
    with pytest.raises(Conflict) as wrong:
        market.node(url, "supplier-south", key=market.secret["supplier-north"])
    assert wrong.value.code == "wrong_encryption_key"
    restarted = market.node(url, "supplier-south", key=market.secret["supplier-south"])
    assert restarted.store.confidential_check(order.tx_id_hex).outcome == "verified"


def test_node_config_loads_the_encryption_key(market: Market, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from node.app import app_from_config
    from node.config import NodeConfig

    monkeypatch.setenv("TRADELEDGER_ENCRYPTION_KEY",
                       str(market.consortium.encryption_key_path("supplier-north")))
    config = NodeConfig.from_env(
        data_dir=tmp_path, genesis_path=market.consortium.genesis_path,
        node_key_path=market.consortium.key_path("supplier-north", "node"),
        node_org="supplier-north", passphrase=PASSPHRASE)
    assert config.encryption_key_path == market.consortium.encryption_key_path(
        "supplier-north")
    app = app_from_config(config)
    node: LedgerNode = app.state.node
    OPEN_STORES.append(node.store)
    assert node.confidential is not None and node.confidential.org == "supplier-north"
