"""An order from purchase to payment with shipping, customs and warehouse scans.

Shared by the API scenario test and the browser test of the timeline page. Every
step is a signed transaction submitted over HTTP through ``client.sdk.Client``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from client.sdk import Client, TxBuilder
from ledger.contracts.shipments import order_biz_transaction
from ledger.tx import SignedTx

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ORDER_ID = "PO-EPCIS-0001"

# Places (GLN as sgln URNs), tied to their organisations by shipments.register.
FACTORY = "urn:epc:id:sgln:6901234.00001.0"        # supplier-sz, Shenzhen
PORT_SZ = "urn:epc:id:sgln:8881234.00010.0"        # logistics, Yantian terminal
PORT_RTM = "urn:epc:id:sgln:8881234.00020.0"       # logistics, Rotterdam Maasvlakte
CUSTOMS_RTM = "urn:epc:id:sgln:7601234.00005.0"    # inspector, Rotterdam inspection bay
WAREHOUSE = "urn:epc:id:sgln:8712345.00001.0"      # warehouse, Rotterdam bonded warehouse
WAREHOUSE_DL = "https://id.gs1.org/414/8712345000011"  # the same GLN as Digital Link
CASES = [f"urn:epc:id:sgtin:6901234.012345.{n}" for n in range(1, 5)]
PALLET = "urn:epc:id:sscc:6901234.0000000077"
PALLET_DL = "https://id.gs1.org/00/069012340000000771"

REGISTRATIONS = {"supplier-sz": [FACTORY], "logistics": [PORT_SZ, PORT_RTM],
                 "inspector": [CUSTOMS_RTM], "warehouse": [WAREHOUSE]}


def epcis_doc(*events: dict[str, Any]) -> dict[str, Any]:
    return {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "epcisBody": {"eventList": list(events)}}


class Scenario:
    """Builds and submits the scenario's transactions; ``send`` waits for each."""

    def __init__(self, client: Client, keys: dict[str, Any], chain_id: str) -> None:
        self.client = client
        self.keys = keys
        self.chain_id = chain_id
        # Business time: the scans happened over the last weeks, in order.
        self.clock = datetime.now(UTC).replace(microsecond=0) - timedelta(days=25)
        self.committed: list[str] = []

    def builder(self, org: str) -> TxBuilder:
        return TxBuilder(self.keys[org], chain_id=self.chain_id)

    def send(self, tx: SignedTx, org: str) -> dict[str, Any]:
        """Submit and wait, signing the requests as ``org`` (the tx's author)."""
        client = self.client.with_key(self.keys[org])
        client.submit(tx)
        status = client.wait(tx.tx_id_hex, timeout=30)
        assert status["status"] == "committed", status
        self.committed.append(tx.tx_id_hex)
        return status

    def tx(self, org: str, tx_type: str, payload: dict[str, Any], *cosigners: str
           ) -> SignedTx:
        return self.builder(org).build(tx_type, payload,
                                       cosigners=[self.keys[c] for c in cosigners])

    def event(self, step: str, disposition: str | None, location: str, *,
              epcs: list[str] | None = None, kind: str = "ObjectEvent", hours: float = 6,
              **fields: Any) -> dict[str, Any]:
        self.clock += timedelta(hours=hours)
        ev: dict[str, Any] = {
            "type": kind, "eventTime": self.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "eventTimeZoneOffset": "+00:00", "action": fields.pop("action", "OBSERVE"),
            "bizStep": step, "readPoint": {"id": location}, "bizLocation": {"id": location},
            "bizTransactionList": [{"type": "po",
                                    "bizTransaction": order_biz_transaction(ORDER_ID)}],
        }
        if disposition is not None:
            ev["disposition"] = disposition
        if epcs is not None:
            ev["epcList"] = epcs
        ev.update(fields)
        return ev

    def record(self, org: str, tx_type: str, payload: dict[str, Any], *cosigners: str
               ) -> dict[str, Any]:
        return self.send(self.tx(org, tx_type, payload, *cosigners), org)

    def capture(self, org: str, *events: dict[str, Any]) -> dict[str, Any]:
        return self.record(org, "shipments.capture", {"epcis": epcis_doc(*events)})

    def ship(self, org: str, epcs: list[str], origin: str, destination: str) -> dict[str, Any]:
        return self.event("shipping", "in_transit", origin, epcs=epcs,
                          destinationList=[{"type": "location", "destination": destination}])

    def run(self, *, step: Callable[[str], None] = lambda _name: None) -> None:
        """The whole flow; ``step(name)`` is called after each stage (for assertions)."""
        for org, places in REGISTRATIONS.items():
            self.record(org, "shipments.register", {"identifiers": places})
        today = date.today()
        self.record("buyer-rotterdam", "trade.order", {
            "order_id": ORDER_ID, "buyer": "buyer-rotterdam", "seller": "supplier-sz",
            "currency": "EUR", "total": 2_400_000, "incoterms": "CIF"}, "supplier-sz")
        step("order")
        # Factory: commission the cases, pack them on a pallet, hand over to the forwarder.
        self.capture("supplier-sz",
                     self.event("commissioning", "active", FACTORY, epcs=CASES, action="ADD"),
                     self.event("packing", "in_progress", FACTORY, kind="AggregationEvent",
                                action="ADD", parentID=PALLET, childEPCs=CASES, hours=1))
        self.record("supplier-sz", "trade.invoice", {
            "invoice_id": "INV-EPCIS-0001", "order_id": ORDER_ID, "amount": 2_400_000,
            "currency": "EUR", "issue_date": today.isoformat(),
            "due_date": (today + timedelta(days=60)).isoformat(), "payment_terms": "NET60"})
        step("invoice")
        self.capture("supplier-sz", self.ship("supplier-sz", [PALLET], FACTORY, PORT_SZ))
        self.capture("logistics",
                     self.event("receiving", "in_progress", PORT_SZ, epcs=[PALLET]),
                     self.event("loading", "in_progress", PORT_SZ, epcs=[PALLET], hours=2))
        self.capture("logistics", self.ship("logistics", [PALLET], PORT_SZ, PORT_RTM))
        self.record("buyer-rotterdam", "trade.invoice_ack",
                          {"invoice_id": "INV-EPCIS-0001"})
        step("shipped")
        # Rotterdam: arrival, customs hold and inspection, release.
        self.capture("logistics",
                     self.event("receiving", "in_progress", PORT_RTM, epcs=[PALLET], hours=400))
        self.capture("inspector",
                     self.event("holding", "sellable_not_accessible", CUSTOMS_RTM,
                                epcs=[PALLET]),
                     self.event("inspecting", "in_progress", CUSTOMS_RTM, epcs=[PALLET],
                                hours=3),
                     self.event("accepting", "conformant", CUSTOMS_RTM, epcs=[PALLET],
                                hours=3))
        step("customs")
        # To the bonded warehouse: ship, receive, unpack, store.
        self.capture("logistics", self.ship("logistics", [PALLET], PORT_RTM, WAREHOUSE))
        self.capture("warehouse",
                     self.event("receiving", "in_progress", WAREHOUSE_DL, epcs=[PALLET]),
                     self.event("unpacking", "in_progress", WAREHOUSE, kind="AggregationEvent",
                                action="DELETE", parentID=PALLET, hours=1),
                     self.event("storing", "sellable_accessible", WAREHOUSE, epcs=CASES,
                                hours=1))
        step("warehouse")
        self.record("buyer-rotterdam", "trade.payment", {
            "payment_id": "PAY-EPCIS-0001", "invoice_id": "INV-EPCIS-0001",
            "amount": 1_000_000, "currency": "EUR", "value_date": today.isoformat()})
        self.record("buyer-rotterdam", "trade.payment", {
            "payment_id": "PAY-EPCIS-0002", "invoice_id": "INV-EPCIS-0001",
            "amount": 1_400_000, "currency": "EUR", "value_date": today.isoformat()})
        step("paid")
