"""Sealed trade details in the SDK: orders and invoices only their parties can read.

The commercial details of a record (line items, unit prices, quantities, bank
terms) go into a ``confidential`` object sealed to the buyer and the seller;
the fields every validator needs (total, currency, dates, parties) stay in
the clear (specs/trade.md#confidential-details). The scheme itself, one
implementation for client and node, is :mod:`ledger.confidential`.

    keys = encryption_keys(genesis_bytes)
    payload = sealed_order(order_id="PO-1", buyer="buyer-a", seller="supplier-a",
                           currency="EUR", details={"line_items": [...]}, keys=keys)
    ...
    details = open_record(client.tx(tx_id), "buyer-a", my_encryption_key)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from ledger.chain import Genesis
from ledger.confidential import (
    ConfidentialError,
    check_opening,
    check_sealed_copy,
    open_sealed,
    seal,
)
from ledger.contracts.base import Payload, parse_payload
from ledger.encoding import MAX_SAFE_INTEGER
from ledger.errors import MalformedRecord
from ledger.keys import EncryptionKey

__all__ = [
    "ConfidentialError",
    "TradeDetails",
    "check_opening",
    "check_sealed_copy",
    "encryption_keys",
    "lines_total",
    "open_record",
    "open_sealed",
    "seal",
    "sealed_invoice",
    "sealed_order",
]

Text = Annotated[str, Field(min_length=1, max_length=500)]
Positive = Annotated[int, Field(gt=0, le=MAX_SAFE_INTEGER)]


class LineItem(Payload):
    """One line: ``quantity`` units of ``unit`` at ``unit_price`` minor units each."""

    sku: Text
    description: Text
    quantity: Positive
    unit: Annotated[str, Field(min_length=1, max_length=8)] = "EA"
    unit_price: Positive


class TradeDetails(Payload):
    """The recommended shape of sealed trade details (specs/trade.md#details)."""

    line_items: list[LineItem] = Field(min_length=1, max_length=500)
    bank_terms: dict[str, str] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None


def lines_total(details: Mapping[str, Any]) -> int:
    """The sum of ``quantity * unit_price`` over the line items, after checking them."""
    model = parse_payload(TradeDetails, details, path="details")
    return sum(line.quantity * line.unit_price for line in model.line_items)


def encryption_keys(genesis: bytes | Genesis) -> dict[str, bytes]:
    """Each organisation's X25519 public key, from the genesis file you trust.

    Organisations without an ``encryption_key`` are left out.
    """
    anchor = genesis if isinstance(genesis, Genesis) else Genesis.from_bytes(genesis)
    return {org["id"]: bytes.fromhex(org["encryption_key"])
            for org in anchor.tx.body.payload["organisations"] if org.get("encryption_key")}


def _sealed_to(details: Mapping[str, Any], parties: Sequence[str],
               keys: Mapping[str, bytes]) -> dict[str, Any]:
    missing = [org for org in parties if org not in keys]
    if missing:
        raise MalformedRecord(f"no encryption key for {', '.join(missing)}", field="keys",
                              rule="required")
    return seal(details, {org: keys[org] for org in parties})


def _agreed_total(details: Mapping[str, Any], stated: int | None, field: str) -> int:
    total = lines_total(details)
    if stated is not None and stated != total:
        raise MalformedRecord(f"{stated} differs from the sealed line items' total {total}",
                              field=field, rule="lines_total")
    return total


def sealed_order(*, order_id: str, buyer: str, seller: str, currency: str,
                 details: Mapping[str, Any], keys: Mapping[str, bytes],
                 total: int | None = None, **disclosed: Any) -> dict[str, Any]:
    """A ``trade.order`` payload whose details are sealed to the buyer and the seller.

    ``total`` (disclosed) defaults to the line items' total and, if given, must
    equal it; ``disclosed`` takes the other clear fields (``incoterms``,
    ``delivery_by``).
    """
    return {"order_id": order_id, "buyer": buyer, "seller": seller, "currency": currency,
            "total": _agreed_total(details, total, "total"), **disclosed,
            "confidential": _sealed_to(details, (buyer, seller), keys)}


def sealed_invoice(*, invoice_id: str, order_id: str, buyer: str, seller: str,
                   currency: str, issue_date: str, due_date: str, payment_terms: str,
                   details: Mapping[str, Any], keys: Mapping[str, bytes],
                   amount: int | None = None, **disclosed: Any) -> dict[str, Any]:
    """A ``trade.invoice`` payload whose details are sealed to the buyer and the seller.

    ``amount`` defaults to the line items' total and, if given, must equal it;
    ``disclosed`` takes the other clear fields (``fx_rate_to_usd``). Bank terms
    belong in ``details["bank_terms"]``.
    """
    return {"invoice_id": invoice_id, "order_id": order_id,
            "amount": _agreed_total(details, amount, "amount"), "currency": currency,
            "issue_date": issue_date, "due_date": due_date, "payment_terms": payment_terms,
            **disclosed, "confidential": _sealed_to(details, (buyer, seller), keys)}


def open_record(tx_status: Mapping[str, Any], org: str, key: EncryptionKey
                ) -> dict[str, Any]:
    """Open ``org``'s copy of the details of a committed transaction.

    ``tx_status`` is what ``Client.tx`` returns for a committed order or
    invoice; ``key`` is ``org``'s :class:`ledger.keys.EncryptionKey`.
    """
    transaction = tx_status.get("transaction")
    payload = transaction.get("body", {}).get("payload") if isinstance(transaction,
                                                                       Mapping) else None
    confidential = payload.get("confidential") if isinstance(payload, Mapping) else None
    if not isinstance(confidential, Mapping):
        raise ConfidentialError(f"transaction {tx_status.get('tx_id')} carries no sealed "
                                "details (or is not committed)", code="not_confidential")
    return open_sealed(confidential, org, key)
