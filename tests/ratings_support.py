"""A node with a small trade history for the rating API, CLI, page and attestation tests.

Buyer ``buyer-lyon`` has three USD invoices of 100,000 due 40, 35 and 30 days
before today, one per supplier: paid on the due date (v = 80), 10 days late
(v = 80 - 20/3) and 30 days early (v = 100). By hand: score round(253.33 / 3)
= 84, band low, days beyond terms 10 / 3 -> 3, within terms 2/3 -> 67 %, worst
delay 10 days; every trend span (3, 6, 12 months) holds all three. Buyer
``buyer-rotterdam`` has one invoice: insufficient history.

Requests stand in for a signed member with ``app.dependency_overrides`` on
``node.auth.member`` (see node/auth.py): ``As.who`` is the calling organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from client.consortium import DEMO_DESCRIPTION
from client.sdk import TxBuilder
from ledger.access import Unauthenticated
from ledger.store import Store
from node.app import create_app
from node.auth import Caller, member
from node.service import LedgerNode

ROLES = {o["id"]: frozenset(o["roles"]) for o in DEMO_DESCRIPTION["organisations"]}
SUPPLIERS = ("supplier-hcm", "supplier-izmir", "supplier-sz")
EXPECTED = {"score": 84, "band": "low", "invoices": 3, "suppliers": 3,
            "days_beyond_terms": 3, "within_terms_percent": 67, "worst_delay_days": 10,
            "amount_usd_minor": 300_000, "capped_suppliers": 0}


@dataclass
class As:
    """The organisation the test's requests come from (None: unsigned)."""

    who: str | None = "supplier-sz"

    def caller(self) -> Caller:
        if self.who is None:  # what the real dependency says to an unsigned request
            raise Unauthenticated("this endpoint needs a signed member request")
        return Caller(self.who, f"{self.who}-member1", ROLES[self.who])


def signed_app(node: LedgerNode, who: As, **kwargs: Any) -> FastAPI:
    app = create_app(node, start_orderer=False, **kwargs)
    app.dependency_overrides[member] = who.caller
    return app


def seed_history(node: LedgerNode, orgs: dict[str, Any], today: date | None = None) -> None:
    """Orders, invoices and payments of the module docstring, committed block by block."""
    day = today or datetime.now(UTC).date()
    chain = node.chain_id

    def b(org: str) -> TxBuilder:
        return TxBuilder(orgs[org].member, chain_id=chain)

    def commit(txs: list[Any]) -> None:
        for tx in txs:
            node.submit(tx.to_wire())
        node.flush()
        for tx in txs:
            status = node.status(tx.tx_id_hex)
            assert status is not None and status.status == "committed", status

    iso = date.isoformat
    pairs = [("buyer-lyon", s) for s in SUPPLIERS] + [("buyer-rotterdam", "supplier-sz")]
    commit([b(buyer).build("trade.order", {
        "order_id": f"PO-{buyer}-{seller}", "buyer": buyer, "seller": seller,
        "currency": "USD", "total": 10_000_000}, cosigners=[orgs[seller].member])
        for buyer, seller in pairs])
    plans = [  # (buyer, seller, invoice, due days before today, paid days after due)
        ("buyer-lyon", "supplier-hcm", "INV-L-1", 40, 0),
        ("buyer-lyon", "supplier-izmir", "INV-L-2", 35, 10),
        ("buyer-lyon", "supplier-sz", "INV-L-3", 30, -30),
        ("buyer-rotterdam", "supplier-sz", "INV-R-1", 20, 0),
    ]
    commit([b(seller).build("trade.invoice", {
        "invoice_id": inv, "order_id": f"PO-{buyer}-{seller}", "amount": 100_000,
        "currency": "USD", "issue_date": iso(day - timedelta(days=due + 60)),
        "due_date": iso(day - timedelta(days=due)), "payment_terms": "NET30"})
        for buyer, seller, inv, due, _late in plans])
    commit([b(buyer).build("trade.payment", {
        "payment_id": f"PAY-{inv}", "invoice_id": inv, "amount": 100_000, "currency": "USD",
        "value_date": iso(day - timedelta(days=due - late))})
        for buyer, _seller, inv, due, late in plans])


def module_node(demo_consortium: Any, url: str) -> LedgerNode:
    """A node whose store the caller closes (``make_node``'s close after each test)."""
    _consortium, genesis, orgs = demo_consortium
    return LedgerNode(Store(url), genesis, node_key=orgs["platform"].node, node_org="platform")
