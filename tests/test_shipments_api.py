"""Shipment scans end to end over HTTP: the shared EPCIS documents, custody, queries,
and an order from purchase to payment with its timeline (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from client.sdk import Client, NodeError, RequestSigner, TxBuilder
from ledger.audit import audit, rebuild_derived
from ledger.contracts import shipments as sh
from ledger.epcis import normalise_epc, validate_document
from node.app import create_app
from tests import epcis_scenario as sc
from tests.helpers import make_node
from tests.test_epcis_validate import INVALID, INVALID_EXPECTED, VALID


class SignedAs:
    """GETs through the app, signed with a member key of one organisation."""

    def __init__(self, http: TestClient, signer: RequestSigner) -> None:
        self.http = http
        self.signer = signer

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(path, params=params, auth=self.signer)


@dataclass
class Api:
    http: TestClient
    client: Client  # signs as the platform
    node: Any
    orgs: Any
    chain_id: str

    def as_org(self, org: str) -> SignedAs:
        """Requests signed by a member key of ``org``."""
        return SignedAs(self.http, RequestSigner(self.orgs[org].member, chain_id=self.chain_id))

    def builder(self, org: str) -> TxBuilder:
        return TxBuilder(self.orgs[org].member, chain_id=self.chain_id)

    def capture(self, org: str, doc: Any) -> dict[str, Any]:
        tx = self.builder(org).build("shipments.capture", {"epcis": doc})
        client = self.client.with_key(self.orgs[org].member)
        client.submit(tx)
        return client.wait(tx.tx_id_hex, timeout=30)

    def events(self, org: str, **query: str) -> list[dict[str, Any]]:
        response = self.as_org(org).get("/v1/epcis/events", params=query)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/ld+json")
        doc = response.json()
        validate_document(doc)  # what the node exports is valid EPCIS 2.0
        events: list[dict[str, Any]] = doc["epcisBody"]["queryResults"]["resultsBody"][
            "eventList"]
        return events


@pytest.fixture
def api(demo_consortium: Any, db_url: str) -> Iterator[Api]:
    node = make_node(demo_consortium, db_url, block_interval=0.01)
    _c, genesis, orgs = demo_consortium
    with TestClient(create_app(node)) as http:
        yield Api(http, Client(http=http, genesis=genesis.to_bytes(),
                               key=orgs["platform"].member), node, orgs, genesis.chain_id)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_shared_valid_document_is_committed_and_queryable(api: Api) -> None:
    assert len(VALID) >= 19
    for path in VALID:
        doc = _load(path)
        status = api.capture("logistics", doc)
        assert status["status"] == "committed", (path.name, status)
        # Each event comes back from a query on its first identifier, as captured.
        for event in validate_document(doc):
            query = ({"epc": event.epcs[0]} if event.epcs else
                     {"epc": event.epc_classes[0]} if event.epc_classes else
                     {"location": event.read_point or event.biz_location or ""})
            found = [e for e in api.events("logistics", limit="1000", **query)
                     if e["eventID"] == event.event_id]
            assert len(found) == 1, (path.name, query)
            assert found[0]["type"] == event.raw["type"]
            assert {k: v for k, v in found[0].items()
                    if k not in ("@context", "eventID", "recordTime")} == \
                {k: v for k, v in event.raw.items() if k not in ("@context", "eventID",
                                                                 "recordTime")}
    # Another organisation, party to none of them, sees none of them.
    assert api.events("buyer-lyon", epc="urn:epc:id:sscc:0614141.1234567890") == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_shared_invalid_document_is_refused_naming_the_field(api: Api, path: Path
                                                                   ) -> None:
    field, rule = INVALID_EXPECTED[path.name]
    tx = api.builder("logistics").build("shipments.capture", {"epcis": _load(path)})
    logistics = api.client.with_key(api.orgs["logistics"].member)
    with pytest.raises(NodeError) as info:
        logistics.submit(tx)
    assert info.value.status == 400
    assert info.value.field == f"body.payload.epcis.{field}"
    assert info.value.problem["rule"] == rule
    assert f"body.payload.epcis.{field}" in info.value.problem["message"]
    # In a batch, the same error names the item.
    result = logistics.submit_batch([tx])[0]
    assert result["status"] == "refused"
    assert result["field"] == f"transactions[0].body.payload.epcis.{field}"
    with pytest.raises(NodeError) as missing:
        logistics.tx(tx.tx_id_hex)
    assert missing.value.status == 404  # nothing was queued or written


def _sample() -> dict[str, Any]:
    return _load(next(p for p in VALID if p.name == "ObjectEvent_with_error_declaration.json"))


def test_a_capture_refused_by_the_contract_reports_its_code(api: Api) -> None:
    doc = sc.epcis_doc(
        {"type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z",
         "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": [sc.CASES[0]],
         "bizStep": "shipping", "bizLocation": {"id": sc.FACTORY},
         "destinationList": [{"type": "location", "destination": sc.WAREHOUSE}]},
        {"type": "ObjectEvent", "eventTime": "2026-03-04T08:00:00Z",
         "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": [sc.CASES[0]],
         "bizStep": "receiving", "bizLocation": {"id": sc.PORT_RTM}})
    status = api.capture("logistics", doc)
    assert status["status"] == "rejected" and status["code"] == "wrong_receiving_location"
    assert status["message"].startswith("payload.epcis.epcisBody.eventList[1].bizLocation.id:")
    assert api.events("logistics", epc=sc.CASES[0]) == []
    # The same event id twice is refused too.
    again = _sample()
    assert api.capture("logistics", again)["status"] == "committed"
    duplicate = api.capture("logistics", _sample() | {"creationDate": "2026-03-05T00:00:00Z"})
    assert duplicate["status"] == "rejected" and duplicate["code"] == "duplicate_event_id"


def test_queries_need_exactly_one_well_formed_selector(api: Api) -> None:
    http = api.as_org("logistics")
    for params in ({}, {"epc": sc.CASES[0], "location": sc.FACTORY}):
        response = http.get("/v1/epcis/events", params=params)
        assert response.status_code == 400 and response.json()["rule"] == "one_of"
    response = http.get("/v1/epcis/events", params={"epc": "urn:epc:id:sgtin:12.34"})
    assert response.status_code == 400 and response.json()["field"] == "epc"
    response = api.http.get("/v1/epcis/events", params={"epc": sc.CASES[0]})  # unsigned
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_an_order_from_purchase_to_payment_with_its_timeline(api: Api) -> None:
    keys = {org: api.orgs[org].member for org in api.orgs}
    scenario = sc.Scenario(api.client, keys, api.chain_id)
    seen: dict[str, list[str]] = {}

    def kinds(org: str) -> list[str]:
        response = api.as_org(org).get(f"/v1/orders/{sc.ORDER_ID}/timeline")
        assert response.status_code == 200, response.text
        return [e["kind"] for e in response.json()["entries"]]

    def step(name: str) -> None:
        seen[name] = kinds("buyer-rotterdam")

    scenario.run(step=step)
    assert seen["order"] == ["order"]
    assert seen["invoice"] == ["order", "shipment", "shipment", "invoice"]
    assert "acknowledgement" in seen["shipped"]
    assert [k for k in seen["customs"] if k == "customs"] == ["customs"] * 3

    timeline = api.as_org("supplier-sz").get(f"/v1/orders/{sc.ORDER_ID}/timeline").json()
    entries = timeline["entries"]
    assert timeline["status"] == "invoiced"
    assert timeline["invoices"] == [{"invoice_id": "INV-EPCIS-0001", "amount": 2_400_000,
                                     "open": 0, "status": "paid", "acknowledged": True}]
    flows = {e["flow"] for e in entries}
    assert flows == {"information", "logistics", "finance"}
    logistics = [e for e in entries if e["flow"] == "logistics"]
    assert [e["biz_step"] for e in logistics] == [
        "commissioning", "packing", "shipping", "receiving", "loading", "shipping",
        "receiving", "holding", "inspecting", "accepting", "shipping", "receiving",
        "unpacking", "storing"]
    customs = [e for e in logistics if e["kind"] == "customs"]
    assert {e["recorded_by"] for e in customs} == {"inspector"}
    assert customs[-1]["disposition"] == "conformant"
    assert [e["kind"] for e in logistics if e["biz_step"] in ("unpacking", "storing")] == \
        ["warehouse", "warehouse"]
    assert [e["kind"] for e in entries if e["flow"] == "finance"] == ["payment", "payment"]
    # Locations in the order the goods passed them, as canonical GLN keys.
    assert timeline["locations"] == [normalise_epc(x) for x in (
        sc.FACTORY, sc.PORT_SZ, sc.PORT_RTM, sc.CUSTOMS_RTM, sc.WAREHOUSE)]
    # By time: the customs steps come after the arrival in Rotterdam, payments last.
    assert entries[-1]["kind"] == "payment"
    # Only the buyer and the seller may read the timeline; others get 404.
    for outsider in ("logistics", "warehouse", "bank-eu", "buyer-lyon"):
        response = api.as_org(outsider).get(f"/v1/orders/{sc.ORDER_ID}/timeline")
        assert response.status_code == 404 and response.json()["code"] == "unknown_order"
    assert api.as_org("buyer-rotterdam").get("/v1/orders/PO-NONE/timeline").status_code == 404

    # EPCIS queries: the pallet's history, the warehouse's events, the order's events.
    history = api.events("buyer-rotterdam", epc=sc.PALLET_DL)
    assert [e["bizStep"] for e in history][:3] == ["packing", "shipping", "receiving"]
    at_warehouse = api.events("warehouse", location=sc.WAREHOUSE)
    assert [e["bizStep"] for e in at_warehouse] == ["receiving", "unpacking", "storing"]
    by_order = api.events("supplier-sz", biz_transaction=f"urn:tradeledger:order:{sc.ORDER_ID}")
    assert len(by_order) == len(logistics)
    # The inspector sees the customs steps it recorded, not the factory's.
    inspector = api.events("inspector", epc=sc.PALLET)
    assert {e["bizStep"] for e in inspector} == {"holding", "inspecting", "accepting"}
    # Custody and aggregation as the contract derived them.
    pallet = sh.epc_record(api.node.store, sc.PALLET_DL)
    assert pallet["children"] == [] and pallet["custodian"] == "warehouse"
    assert pallet["customs"]["step"] == "accepting" and pallet["in_transit"] is None
    case = sh.epc_record(api.node.store, normalise_epc(sc.CASES[0]))
    assert case["parent"] is None and case["location"] == sc.WAREHOUSE_DL
    assert case["disposition"] == "sellable_accessible"

    # The capture transactions themselves follow the same parties (tx_party rows): the
    # factory's scans are readable by the order's buyer, not by the forwarder or a bank.
    factory_scans = scenario.committed[5]
    buyer = api.client.with_key(api.orgs["buyer-rotterdam"].member)
    assert buyer.tx(factory_scans)["transaction"]["body"]["type"] == "shipments.capture"
    for outsider in ("logistics", "bank-eu"):
        with pytest.raises(NodeError) as hidden:
            api.client.with_key(api.orgs[outsider].member).tx(factory_scans)
        assert hidden.value.status == 404
    # Registrations are public.
    assert api.client.with_key(api.orgs["bank-eu"].member).tx(scenario.committed[0])[
        "status"] == "committed"

    # The chain is the truth: an audit replays every capture to the same derived state,
    # and a rebuild of the shipments state is byte-identical.
    before = list(api.node.store.state_items())
    assert audit(api.node.store, workers=1).ok
    with api.node.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM state WHERE key LIKE :prefix"),
                     {"prefix": "shipments/%"})
    rebuild_derived(api.node.store, workers=1)
    assert list(api.node.store.state_items()) == before
