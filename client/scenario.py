"""The demo scenario, written through the SDK as members would write it.

Idempotent per consortium: a scenario already on the ledger is not repeated.
It grows with each record family:

* key lifecycle: every organisation enrols a second member key;
* trade (information flow): Lowlands Retail orders electronics from
  Shenzhen Bright Electronics, is invoiced, acknowledges the payable and pays
  in two parts; Maison Rhone orders textiles from Saigon Textile Works, is
  invoiced and acknowledges (not yet due); a third invoice is disputed.
  The line items, unit prices and bank terms of every order and invoice are
  sealed to its buyer and seller (specs/trade.md#confidential-details); the
  platform's node, which serves the demo, holds only their ciphertext.
* shipments (logistics flow, GS1 EPCIS 2.0): the Shenzhen factory, the
  forwarder's terminals, the inspection agency and the bonded warehouse register
  their places; the electronics for Lowlands Retail are packed on a pallet,
  shipped, held and released by customs, and received and stored in Rotterdam,
  each scan naming the order (its timeline: /explorer/orders/PO-NL-0001).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from client.confidential import encryption_keys, sealed_invoice, sealed_order
from client.consortium import DEMO_DESCRIPTION, Consortium
from client.sdk import Client, TxBuilder
from ledger.contracts.shipments import order_biz_transaction
from ledger.keys import SigningKey, load_key, save_key
from ledger.tx import SignedTx


def _member(consortium: Consortium, org: str, passphrase: str) -> SigningKey:
    return load_key(consortium.key_path(org, "member1"), passphrase)


def _line(sku: str, description: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {"sku": sku, "description": description, "quantity": quantity, "unit": "EA",
            "unit_price": unit_price}


# The commercial details of the three trades: only the buyer and the seller read them.
DETAILS: dict[str, dict[str, Any]] = {
    "PO-NL-0001": {"line_items": [
        _line("SZ-OLED-61", "6.1-inch OLED display module", 400, 2_500),
        _line("SZ-USBC-PD65", "65 W USB-C PD charger", 500, 500)]},
    "PO-FR-0001": {"line_items": [
        _line("HCM-LIN-SHIRT", "Linen shirt, stone washed", 1_200, 300),
        _line("HCM-COT-TEE", "Organic cotton T-shirt", 1_500, 80)]},
    "PO-FR-0002": {"line_items": [
        _line("IZ-EVOO-5L", "Extra virgin olive oil, 5 l tin (case of 4)", 40, 2_400)]},
}
BANK_TERMS: dict[str, dict[str, str]] = {
    "supplier-sz": {"bank": "Harbour Bank Asia", "account": "HK-012-883-204417-001",
                    "swift_bic": "HRBAHKHHXXX"},
    "supplier-hcm": {"bank": "Harbour Bank Asia", "account": "VN-970-415-0088-2231",
                     "swift_bic": "HRBAHKHHXXX"},
    "supplier-izmir": {"bank": "Rhine Trade Bank", "iban": "TR330006100519786457841326",
                       "swift_bic": "RHTBDEFFXXX"},
}


def seed_scenario(client: Client, consortium: Consortium, passphrase: str,
                  chain_id: str, *, today: date | None = None) -> dict[str, Any]:
    marker = consortium.root / "scenario.done"
    if marker.exists():
        return {"already_seeded": True, "last_tx": marker.read_text(encoding="utf-8").strip()}
    day = today or datetime.now(UTC).date()
    submitted: list[SignedTx] = []
    # Each organisation submits and follows its own records with its own key:
    # the node shows a member only what its organisation may read.
    signers: dict[str, Client] = {}

    authors: dict[str, SigningKey] = {}

    def as_author(tx: SignedTx) -> Client:
        if tx.body.author not in signers:
            signers[tx.body.author] = client.with_key(authors[tx.body.author])
        return signers[tx.body.author]

    def send(tx: SignedTx) -> None:
        as_author(tx).submit(tx)
        submitted.append(tx)

    def settle() -> None:
        for tx in submitted:
            status = as_author(tx).wait(tx.tx_id_hex)
            if status["status"] != "committed":
                raise RuntimeError(f"demo transaction {tx.body.type} was rejected: {status}")

    for org in DEMO_DESCRIPTION["organisations"]:
        org_id = org["id"]
        admin = load_key(consortium.key_path(org_id, "admin"), passphrase)
        authors[admin.key_id] = admin
        new_key = SigningKey.generate()
        save_key(consortium.key_path(org_id, "member2"), new_key, passphrase,
                 label=f"{org_id} member 2")
        send(TxBuilder(admin, chain_id=chain_id).build(
            "membership.key_enrol",
            {"org": org_id, "public_key": new_key.public_key_hex, "kind": "member",
             "label": "member 2"}))
    settle()

    keys = {o["id"]: _member(consortium, o["id"], passphrase)
            for o in DEMO_DESCRIPTION["organisations"]}
    authors.update({k.key_id: k for k in keys.values()})

    def b(org: str) -> TxBuilder:
        return TxBuilder(keys[org], chain_id=chain_id)

    iso = date.isoformat
    sealing = encryption_keys(consortium.genesis_path.read_bytes())

    def order(order_id: str, buyer: str, seller: str, currency: str, **clear: Any) -> None:
        # Buyer and seller both sign the purchase order; its lines are sealed to both.
        send(b(buyer).build("trade.order", sealed_order(
            order_id=order_id, buyer=buyer, seller=seller, currency=currency,
            details=DETAILS[order_id], keys=sealing, **clear), cosigners=[keys[seller]]))

    def invoice(invoice_id: str, order_id: str, buyer: str, seller: str, currency: str,
                issued: date, due: date, terms: str, **clear: Any) -> None:
        details = {**DETAILS[order_id], "bank_terms": BANK_TERMS[seller]}
        send(b(seller).build("trade.invoice", sealed_invoice(
            invoice_id=invoice_id, order_id=order_id, buyer=buyer, seller=seller,
            currency=currency, issue_date=iso(issued), due_date=iso(due),
            payment_terms=terms, details=details, keys=sealing, **clear)))

    order("PO-NL-0001", "buyer-rotterdam", "supplier-sz", "EUR", incoterms="CIF",
          delivery_by=iso(day + timedelta(days=45)))
    sealed_example = submitted[-1].tx_id_hex
    order("PO-FR-0001", "buyer-lyon", "supplier-hcm", "EUR", incoterms="FOB")
    order("PO-FR-0002", "buyer-lyon", "supplier-izmir", "USD")
    settle()
    eur_usd = {"numerator": 108, "denominator": 100}
    invoice("INV-SZ-0001", "PO-NL-0001", "buyer-rotterdam", "supplier-sz", "EUR",
            day - timedelta(days=40), day - timedelta(days=10), "NET30", fx_rate_to_usd=eur_usd)
    invoice("INV-HCM-0001", "PO-FR-0001", "buyer-lyon", "supplier-hcm", "EUR",
            day, day + timedelta(days=60), "NET60", fx_rate_to_usd=eur_usd)
    invoice("INV-IZ-0001", "PO-FR-0002", "buyer-lyon", "supplier-izmir", "USD",
            day - timedelta(days=5), day + timedelta(days=25), "NET30")
    settle()
    send(b("buyer-rotterdam").build("trade.invoice_ack", {"invoice_id": "INV-SZ-0001"}))
    send(b("buyer-lyon").build("trade.invoice_ack", {"invoice_id": "INV-HCM-0001"}))
    send(b("buyer-lyon").build("trade.dispute_open", {
        "dispute_id": "DSP-IZ-0001", "invoice_id": "INV-IZ-0001",
        "reason": "12 of 40 cases arrived damaged"}))
    settle()
    for org, places in DEMO_PLACES.items():
        send(b(org).build("shipments.register", {"identifiers": places}))
    settle()
    for org, doc in shipment_documents("PO-NL-0001", day):
        send(b(org).build("shipments.capture", {"epcis": doc}))
        settle()  # in order: each scan builds on the custody the last one recorded
    send(b("buyer-rotterdam").build("trade.payment", {
        "payment_id": "PAY-NL-0001", "invoice_id": "INV-SZ-0001", "amount": 500_000,
        "currency": "EUR", "value_date": iso(day - timedelta(days=12))}))
    settle()
    send(b("buyer-rotterdam").build("trade.payment", {
        "payment_id": "PAY-NL-0002", "invoice_id": "INV-SZ-0001", "amount": 750_000,
        "currency": "EUR", "value_date": iso(day - timedelta(days=3))}))
    settle()
    last = submitted[-1].tx_id_hex
    marker.write_text(last + "\n", encoding="utf-8")
    return {"transactions": len(submitted), "orders": 3, "invoices": 3, "payments": 2,
            "shipment_scans": 11, "last_tx": last,
            "sealed_order_tx": sealed_example}


#: The demo's places (GLNs), by the organisation that registers them.
DEMO_PLACES = {"supplier-sz": ["urn:epc:id:sgln:6901234.00001.0"],
               "logistics": ["urn:epc:id:sgln:8881234.00010.0",
                             "urn:epc:id:sgln:8881234.00020.0"],
               "inspector": ["urn:epc:id:sgln:7601234.00005.0"],
               "warehouse": ["urn:epc:id:sgln:8712345.00001.0"]}


def shipment_documents(order_id: str, day: date) -> list[tuple[str, dict[str, Any]]]:
    """The demo's scans for ``order_id``, as (recording organisation, EPCISDocument)."""
    factory, yantian, maasvlakte = (DEMO_PLACES["supplier-sz"][0], *DEMO_PLACES["logistics"])
    bay, warehouse = DEMO_PLACES["inspector"][0], DEMO_PLACES["warehouse"][0]
    cases = [f"urn:epc:id:sgtin:6901234.012345.{n}" for n in range(1, 5)]
    pallet = "urn:epc:id:sscc:6901234.0000000077"
    start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC) - timedelta(days=36)

    def event(days: float, step: str, disposition: str, place: str, **fields: Any
              ) -> dict[str, Any]:
        when = start + timedelta(days=days)
        return {"type": fields.pop("kind", "ObjectEvent"),
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "eventTimeZoneOffset": "+08:00" if place in (factory, yantian) else "+01:00",
                "action": fields.pop("action", "OBSERVE"), "bizStep": step,
                "disposition": disposition, "readPoint": {"id": place},
                "bizLocation": {"id": place},
                "bizTransactionList": [{"type": "po",
                                        "bizTransaction": order_biz_transaction(order_id)}],
                **fields}

    def ship(days: float, origin: str, destination: str) -> dict[str, Any]:
        return event(days, "shipping", "in_transit", origin, epcList=[pallet],
                     destinationList=[{"type": "location", "destination": destination}])

    def doc(*events: dict[str, Any]) -> dict[str, Any]:
        return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": events[-1]["eventTime"], "epcisBody": {"eventList": list(events)}}

    return [
        ("supplier-sz", doc(
            event(0, "commissioning", "active", factory, epcList=cases, action="ADD"),
            event(0.1, "packing", "in_progress", factory, kind="AggregationEvent",
                  action="ADD", parentID=pallet, childEPCs=cases),
            ship(0.5, factory, yantian))),
        ("logistics", doc(event(1, "receiving", "in_progress", yantian, epcList=[pallet]),
                          ship(2, yantian, maasvlakte))),
        ("logistics", doc(event(30, "receiving", "in_progress", maasvlakte, epcList=[pallet]))),
        ("inspector", doc(
            event(30.5, "holding", "sellable_not_accessible", bay, epcList=[pallet]),
            event(31, "accepting", "conformant", bay, epcList=[pallet]))),
        ("logistics", doc(ship(31.5, maasvlakte, warehouse))),
        ("warehouse", doc(event(32, "receiving", "in_progress", warehouse, epcList=[pallet]),
                          event(32.2, "storing", "sellable_accessible", warehouse,
                                epcList=[pallet]))),
    ]
