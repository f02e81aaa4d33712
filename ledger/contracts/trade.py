"""Trade: the information flow (specs/trade.md).

Purchase orders, invoices, the buyer's acknowledgement, payments, credit notes
and disputes. Every rule of this record family lives here (STYLE habit 16).

Each contract is a deterministic function of the state, the transaction and
the block: time is ``ctx.time`` (the block's time), never the wall clock. All
state goes through ``ctx.state``; the key spellings are the ``*_key`` helpers
below, which the rating and finance modules import rather than re-spell.

Amounts are integers in minor units of an active ISO 4217 currency
(:mod:`ledger.currency`). A rejection is ``Rejected(code, message)``; the
message names the payload field and the rule (specs/trade.md#rejections).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import AfterValidator, Field, field_validator

from ledger import currency as iso4217
from ledger.contracts.base import Keys, Payload, TxContext, WireDate, contract
from ledger.contracts.membership import ORG_ID
from ledger.encoding import MAX_SAFE_INTEGER
from ledger.errors import Rejected
from ledger.timefmt import format_time

# -- wire formats ----------------------------------------------------------------

RECORD_ID = r"^[A-Za-z0-9._:-]{1,64}$"
HEX_SHA256 = r"^[0-9a-f]{64}$"
INCOTERMS_2020: Final = frozenset(
    {"EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"}
)
MAX_SEALED = 16
MAX_SEALED_CHARS = 65536
# The types whose payload may carry sealed details (section 1.5).
CONFIDENTIAL_TYPES: Final = frozenset({"trade.order", "trade.invoice"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _active_currency(code: str) -> str:
    if not iso4217.is_active(code):
        raise ValueError(f"{code!r} is not an active ISO 4217 currency code")
    return code


def _incoterm(code: str) -> str:
    if code not in INCOTERMS_2020:
        raise ValueError(
            f"{code!r} is not an Incoterms 2020 rule; rules are {', '.join(sorted(INCOTERMS_2020))}"
        )
    return code


def _single_line(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError("control characters are not allowed")
    return text


RecordId = Annotated[str, Field(pattern=RECORD_ID)]
OrgId = Annotated[str, Field(pattern=ORG_ID)]
Amount = Annotated[int, Field(gt=0, le=MAX_SAFE_INTEGER)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_active_currency)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class Confidential(Payload):
    """Details only the parties read: a commitment and per-party sealed copies.

    ``commitment`` is the salted, domain-separated SHA-256 of the plaintext;
    ``sealed`` maps each receiving organisation to the base64 sealed box of that
    plaintext under the organisation's encryption key (specs/trade.md#sealing,
    :mod:`ledger.confidential`). Validators check only this shape: no contract
    opens the details or depends on them.
    """

    commitment: str = Field(pattern=HEX_SHA256)
    sealed: dict[OrgId, str] = Field(min_length=1, max_length=MAX_SEALED)

    @field_validator("sealed")
    @classmethod
    def _base64(cls, sealed: dict[str, str]) -> dict[str, str]:
        for org, text in sealed.items():
            if not text or len(text) > MAX_SEALED_CHARS:
                raise ValueError(
                    f"sealed[{org}] must hold 1 to {MAX_SEALED_CHARS} base64 characters"
                )
            try:
                binascii.a2b_base64(text, strict_mode=True)
            except binascii.Error as exc:
                raise ValueError(
                    f"sealed[{org}] is not padded standard base64 (RFC 4648 section 4)"
                ) from exc
        return sealed


class FxRate(Payload):
    """The price of one major unit of the invoice currency in US dollars."""

    numerator: int = Field(gt=0, le=MAX_SAFE_INTEGER)
    denominator: int = Field(gt=0, le=MAX_SAFE_INTEGER)


class OrderPayload(Payload):
    order_id: RecordId
    buyer: OrgId
    seller: OrgId
    currency: Currency
    total: Amount
    lines_commitment: str | None = Field(default=None, pattern=HEX_SHA256)
    confidential: Confidential | None = None
    incoterms: Annotated[str, AfterValidator(_incoterm)] | None = None
    delivery_by: WireDate | None = None


class InvoicePayload(Payload):
    invoice_id: RecordId
    order_id: RecordId
    amount: Amount
    currency: Currency
    issue_date: WireDate
    due_date: WireDate
    payment_terms: Annotated[
        str, Field(min_length=1, max_length=64), AfterValidator(_single_line)
    ]
    fx_rate_to_usd: FxRate | None = None
    confidential: Confidential | None = None


class InvoiceAckPayload(Payload):
    invoice_id: RecordId


class PaymentPayload(Payload):
    payment_id: RecordId
    invoice_id: RecordId
    amount: Amount
    currency: Currency
    value_date: WireDate


class CreditNotePayload(Payload):
    credit_note_id: RecordId
    invoice_id: RecordId
    amount: Amount
    reason: Reason


class DisputeOpenPayload(Payload):
    dispute_id: RecordId
    invoice_id: RecordId
    reason: Reason


class DisputeResolvePayload(Payload):
    dispute_id: RecordId
    outcome: Literal["upheld", "rejected", "settled"]
    adjustment_amount: int | None = Field(default=None, ge=0, le=MAX_SAFE_INTEGER)


# -- state keys (specs/trade.md#state) --------------------------------------------


def order_key(order_id: str) -> str:
    return f"trade/order/{order_id}"


def invoice_key(invoice_id: str) -> str:
    return f"trade/invoice/{invoice_id}"


def invoice_payments_key(invoice_id: str) -> str:
    return f"trade/invoice_payments/{invoice_id}"


def payment_key(payment_id: str) -> str:
    return f"trade/payment/{payment_id}"


def credit_note_key(credit_note_id: str) -> str:
    return f"trade/credit_note/{credit_note_id}"


def dispute_key(dispute_id: str) -> str:
    return f"trade/dispute/{dispute_id}"


def by_buyer_key(buyer: str, invoice_id: str) -> str:
    """Index entry: one per invoice of ``buyer`` (read with a prefix scan)."""
    return f"trade/by_buyer/{buyer}/{invoice_id}"


def by_buyer_prefix(buyer: str) -> str:
    return f"trade/by_buyer/{buyer}/"


def by_seller_key(seller: str, invoice_id: str) -> str:
    """Index entry: one per invoice issued by ``seller`` (read with a prefix scan)."""
    return f"trade/by_seller/{seller}/{invoice_id}"


def buyer_key(buyer: str) -> str:
    """The buyer's invoice counter: ``{"buyer", "invoice_count"}``."""
    return f"trade/buyer/{buyer}"


def buyer_invoice_key(buyer: str, seq: int) -> str:
    """The buyer's ``seq``-th invoice (0-based), for enumeration by point reads."""
    return f"trade/buyer/{buyer}/{seq:010d}"


class JsonReader(Protocol):
    def get(self, key: str) -> Any:
        """The parsed JSON value under ``key``, or ``None``."""
        ...


def buyer_invoice_ids(state: JsonReader, buyer: str) -> list[str]:
    """Every invoice id of ``buyer`` in the order recorded, by point reads only.

    ``state`` is an :class:`~ledger.state.Overlay` (so it works inside a
    contract) or the store.
    """
    summary = state.get(buyer_key(buyer))
    if summary is None:
        return []
    return [state.get(buyer_invoice_key(buyer, i))["invoice_id"]
            for i in range(int(summary["invoice_count"]))]


# -- shared checks ---------------------------------------------------------------


def _org(ctx: TxContext, org_id: str, field: str) -> dict[str, Any]:
    record: dict[str, Any] | None = ctx.state.get(Keys.org(org_id))
    if record is None:
        raise Rejected("unknown_org", f"payload.{field}: no organisation {org_id!r}")
    if record["status"] != "active":
        raise Rejected("org_inactive", f"payload.{field}: organisation {org_id} is not active")
    return record


def _holds_role(ctx: TxContext, org_id: str, role: str) -> bool:
    record: dict[str, Any] | None = ctx.state.get(Keys.org(org_id))
    return record is not None and role in record["roles"]


def _require_signed_by(ctx: TxContext, orgs: Iterable[str], what: str) -> None:
    missing = [org for org in orgs if org not in ctx.signer_orgs]
    if missing:
        raise Rejected(
            "missing_signature",
            f"signatures: {what} must be signed by {', '.join(missing)} as well",
        )


def _admit_signers(ctx: TxContext, parties: Iterable[str], extra_role: str = "") -> None:
    """Every signer organisation is a party; ``extra_role`` holders become parties.

    A signature binds the signer to the record, so a signer must be one of the
    organisations the record names (specs/trade.md#signers).
    """
    allowed = set(parties)
    for i, org in enumerate(ctx.signer_orgs):
        if org in allowed:
            continue
        if extra_role and _holds_role(ctx, org, extra_role):
            ctx.parties.add(org)
            continue
        raise Rejected(
            "foreign_signer",
            f"signatures[{i}]: organisation {org} is not a party to this {ctx.tx.body.type}",
        )
    ctx.parties.update(allowed)


def _check_sealed(confidential: Confidential | None, parties: Iterable[str]) -> None:
    if confidential is None:
        return
    allowed = set(parties)
    for org in sorted(confidential.sealed):
        if org not in allowed:
            raise Rejected(
                "sealed_not_party",
                f"payload.confidential.sealed: {org} is not a party of the record; "
                f"only {', '.join(sorted(allowed))} may receive sealed details",
            )


def _unused(ctx: TxContext, key: str, code: str, field: str, value: str) -> None:
    if ctx.state.exists(key):
        raise Rejected(code, f"payload.{field}: {value!r} is already used")


def _visible_invoice(ctx: TxContext, invoice_id: str, *, banks: bool = False
                     ) -> dict[str, Any]:
    """The invoice, if the author's organisation is a party (or, with ``banks``, a bank).

    A missing invoice and one the author may not see get the same answer
    (ARCHITECTURE decision 8, need-to-know).
    """
    invoice: dict[str, Any] | None = ctx.state.get(invoice_key(invoice_id))
    visible = invoice is not None and (
        ctx.author_org in (invoice["buyer"], invoice["seller"])
        or (banks and _holds_role(ctx, ctx.author_org, "bank"))
    )
    if invoice is None or not visible:
        raise Rejected("unknown_invoice",
                       f"payload.invoice_id: no invoice {invoice_id!r} visible to "
                       f"{ctx.author_org}")
    return invoice


def _reduce_open(ctx: TxContext, invoice: dict[str, Any], amount: int, kind: str) -> None:
    """Lower the open balance by ``amount``; at zero the invoice is ``paid``."""
    invoice["open"] -= amount
    if invoice["open"] == 0 and invoice["status"] != "paid":
        invoice["status"] = "paid"
        invoice["settled_by"] = kind
        invoice["paid_at"] = format_time(ctx.time)
        invoice["paid_height"] = ctx.height


def _check_open_balance(invoice: dict[str, Any], amount: int, field: str) -> None:
    if invoice["status"] == "paid":
        raise Rejected("already_paid",
                       f"payload.invoice_id: invoice {invoice['invoice_id']} is fully settled")
    if amount > invoice["open"]:
        raise Rejected(
            "exceeds_open_balance",
            f"payload.{field}: {amount} exceeds the open balance {invoice['open']} "
            f"{invoice['currency']} of invoice {invoice['invoice_id']}",
        )


def _related_party(ctx: TxContext, a: str, b: str) -> bool:
    """True when the consortium policy lists ``a`` and ``b`` in one related group.

    Policy shape: ``{"related_parties": [["org-a", "org-b"], ...]}`` in genesis.
    """
    consortium: Mapping[str, Any] | None = ctx.state.get(Keys.CONSORTIUM)
    policy = consortium.get("policy") if consortium else None
    groups = policy.get("related_parties") if isinstance(policy, dict) else None
    if not isinstance(groups, list):
        return False
    return any(isinstance(g, list) and a in g and b in g for g in groups)


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _confidential(value: Confidential | None) -> dict[str, Any] | None:
    return None if value is None else value.model_dump()


# -- trade.order ------------------------------------------------------------------


@contract(
    "trade.order",
    payload=OrderPayload,
    roles={"buyer", "supplier"},
    summary="A purchase order between a buyer and a seller, signed by both.",
    countersigned_by="the other party (buyer or seller)",
)
def apply_order(ctx: TxContext, p: OrderPayload) -> None:
    # 1. The author is a party; 2. buyer and seller differ.
    if ctx.author_org not in (p.buyer, p.seller):
        raise Rejected("author_not_party",
                       f"payload.buyer/seller: the author's organisation {ctx.author_org} "
                       "must be the buyer or the seller")
    if p.buyer == p.seller:
        raise Rejected("same_party", "payload.seller: buyer and seller must differ")
    # 3. Both organisations exist, are active and hold their roles.
    for field, org_id, role in (("buyer", p.buyer, "buyer"), ("seller", p.seller, "supplier")):
        if role not in _org(ctx, org_id, field)["roles"]:
            raise Rejected("wrong_role",
                           f"payload.{field}: organisation {org_id} does not hold the "
                           f"{role} role")
    # 4. Both sign, and nobody else does.
    _require_signed_by(ctx, (p.buyer, p.seller), "trade.order")
    _admit_signers(ctx, (p.buyer, p.seller))
    # 5. The id is new; 6. sealed details go to parties only.
    _unused(ctx, order_key(p.order_id), "duplicate_order", "order_id", p.order_id)
    _check_sealed(p.confidential, (p.buyer, p.seller))
    ctx.state.put(order_key(p.order_id), {
        "order_id": p.order_id,
        "buyer": p.buyer,
        "seller": p.seller,
        "currency": p.currency,
        "total": p.total,
        "lines_commitment": p.lines_commitment,
        "confidential": _confidential(p.confidential),
        "incoterms": p.incoterms,
        "delivery_by": _iso(p.delivery_by),
        "status": "open",
        "invoiced": 0,
        "invoice_ids": [],
        "author_org": ctx.author_org,
        "created_at": format_time(ctx.time),
        "height": ctx.height,
        "tx_id": ctx.tx.tx_id_hex,
    })


# -- trade.invoice ----------------------------------------------------------------


@contract(
    "trade.invoice",
    payload=InvoicePayload,
    roles={"supplier"},
    summary="The seller invoices an order; over the order total only with the buyer's "
            "signature.",
    countersigned_by="buyer (required only to invoice beyond the order total)",
)
def apply_invoice(ctx: TxContext, p: InvoicePayload) -> None:
    # 1. The order exists and the author is a party to it; 2. the author is its seller.
    order: dict[str, Any] | None = ctx.state.get(order_key(p.order_id))
    if order is None or ctx.author_org not in (order["buyer"], order["seller"]):
        raise Rejected("unknown_order",
                       f"payload.order_id: no order {p.order_id!r} visible to "
                       f"{ctx.author_org}")
    if ctx.author_org != order["seller"]:
        raise Rejected("not_seller",
                       f"payload.order_id: only the order's seller {order['seller']} "
                       "may invoice it")
    buyer, seller = order["buyer"], order["seller"]
    _admit_signers(ctx, (buyer, seller))
    # 3. Same currency as the order; 4. due on or after issue; 5. a USD rate is 1.
    if p.currency != order["currency"]:
        raise Rejected("currency_mismatch",
                       f"payload.currency: {p.currency} differs from the order's "
                       f"{order['currency']}")
    if p.due_date < p.issue_date:
        raise Rejected("due_before_issue",
                       "payload.due_date: must be on or after payload.issue_date")
    fx = p.fx_rate_to_usd
    if fx is not None and p.currency == "USD" and fx.numerator != fx.denominator:
        raise Rejected("bad_fx_rate",
                       "payload.fx_rate_to_usd: a USD invoice has the rate 1 "
                       "(numerator equal to denominator)")
    # 6. The id is new.
    _unused(ctx, invoice_key(p.invoice_id), "duplicate_invoice", "invoice_id", p.invoice_id)
    # 7. Cumulative invoicing stays within the order total unless the buyer signs.
    invoiced = int(order["invoiced"]) + p.amount
    if invoiced > order["total"] and buyer not in ctx.signer_orgs:
        raise Rejected(
            "exceeds_order",
            f"payload.amount: invoices would total {invoiced}, over the order total "
            f"{order['total']} {order['currency']}; the buyer {buyer} must co-sign",
        )
    if invoiced > MAX_SAFE_INTEGER:
        raise Rejected("amount_overflow",
                       "payload.amount: the order's invoiced total would exceed 2**53 - 1")
    _check_sealed(p.confidential, (buyer, seller))

    ctx.state.put(invoice_key(p.invoice_id), {
        "invoice_id": p.invoice_id,
        "order_id": p.order_id,
        "buyer": buyer,
        "seller": seller,
        "obligor": buyer,
        "amount": p.amount,
        "currency": p.currency,
        "minor_units": iso4217.minor_units(p.currency),
        "issue_date": p.issue_date.isoformat(),
        "due_date": p.due_date.isoformat(),
        "payment_terms": p.payment_terms,
        "fx_rate_to_usd": None if fx is None else fx.model_dump(),
        "confidential": _confidential(p.confidential),
        "buyer_signed": buyer in ctx.signer_orgs,
        "related_party": _related_party(ctx, buyer, seller),
        "status": "open",
        "open": p.amount,
        "paid": 0,
        "credited": 0,
        "adjusted": 0,
        "payments": [],
        "credit_note_ids": [],
        "acknowledged": False,
        "acknowledged_at": None,
        "acknowledged_height": None,
        "acknowledged_amount": None,
        "disputed": False,
        "dispute_id": None,
        "dispute_ids": [],
        "settled_by": None,
        "paid_at": None,
        "paid_height": None,
        "paid_value_date": None,
        "created_at": format_time(ctx.time),
        "height": ctx.height,
        "tx_id": ctx.tx.tx_id_hex,
    })
    order["invoiced"] = invoiced
    order["invoice_ids"].append(p.invoice_id)
    if invoiced >= order["total"]:
        order["status"] = "invoiced"
    ctx.state.put(order_key(p.order_id), order)
    # The buyer's index: a prefix-scannable entry and an enumerable sequence.
    summary: dict[str, Any] = ctx.state.get(buyer_key(buyer)) or {
        "buyer": buyer, "invoice_count": 0,
    }
    seq = int(summary["invoice_count"])
    ctx.state.put(by_buyer_key(buyer, p.invoice_id),
                  {"seq": seq, "seller": seller, "height": ctx.height})
    ctx.state.put(buyer_invoice_key(buyer, seq), {"invoice_id": p.invoice_id})
    summary["invoice_count"] = seq + 1
    ctx.state.put(buyer_key(buyer), summary)
    ctx.state.put(by_seller_key(seller, p.invoice_id), {"buyer": buyer, "height": ctx.height})


# -- trade.invoice_ack ------------------------------------------------------------


@contract(
    "trade.invoice_ack",
    payload=InvoiceAckPayload,
    roles={"buyer"},
    summary="The buyer acknowledges an invoice as a confirmed payable (once).",
)
def apply_invoice_ack(ctx: TxContext, p: InvoiceAckPayload) -> None:
    invoice = _visible_invoice(ctx, p.invoice_id)
    if ctx.author_org != invoice["buyer"]:
        raise Rejected("not_buyer",
                       f"payload.invoice_id: only the invoice's buyer {invoice['buyer']} "
                       "may acknowledge it")
    _admit_signers(ctx, (invoice["buyer"], invoice["seller"]))
    if invoice["acknowledged"]:
        raise Rejected("already_acknowledged",
                       f"payload.invoice_id: invoice {p.invoice_id} was acknowledged at "
                       f"height {invoice['acknowledged_height']}")
    if invoice["disputed"]:
        raise Rejected("invoice_disputed",
                       f"payload.invoice_id: invoice {p.invoice_id} has the open dispute "
                       f"{invoice['dispute_id']}; resolve it first")
    invoice["acknowledged"] = True
    invoice["acknowledged_at"] = format_time(ctx.time)
    invoice["acknowledged_height"] = ctx.height
    invoice["acknowledged_amount"] = invoice["open"]
    ctx.state.put(invoice_key(p.invoice_id), invoice)


# -- trade.payment ----------------------------------------------------------------


@contract(
    "trade.payment",
    payload=PaymentPayload,
    roles={"buyer", "bank"},
    summary="The obligor or a bank records a (partial) payment of an invoice.",
)
def apply_payment(ctx: TxContext, p: PaymentPayload) -> None:
    invoice = _visible_invoice(ctx, p.invoice_id, banks=True)
    buyer, seller = invoice["buyer"], invoice["seller"]
    if ctx.author_org != invoice["obligor"] and not _holds_role(ctx, ctx.author_org, "bank"):
        raise Rejected("not_payer",
                       f"payload.invoice_id: a payment is recorded by the obligor "
                       f"{invoice['obligor']} or a bank, not {ctx.author_org}")
    _admit_signers(ctx, (buyer, seller), extra_role="bank")
    if p.currency != invoice["currency"]:
        raise Rejected("currency_mismatch",
                       f"payload.currency: {p.currency} differs from the invoice's "
                       f"{invoice['currency']}")
    if p.value_date > ctx.time.date():
        raise Rejected("value_date_in_future",
                       f"payload.value_date: {p.value_date.isoformat()} is after the block "
                       f"date {ctx.time.date().isoformat()}")
    _unused(ctx, payment_key(p.payment_id), "duplicate_payment", "payment_id", p.payment_id)
    _check_open_balance(invoice, p.amount, "amount")

    part = {
        "payment_id": p.payment_id,
        "amount": p.amount,
        "value_date": p.value_date.isoformat(),
        "payer_org": ctx.author_org,
        "height": ctx.height,
        "recorded_at": format_time(ctx.time),
    }
    ctx.state.put(payment_key(p.payment_id), {
        **part,
        "invoice_id": p.invoice_id,
        "order_id": invoice["order_id"],
        "buyer": buyer,
        "seller": seller,
        "currency": p.currency,
        "tx_id": ctx.tx.tx_id_hex,
    })
    invoice["paid"] += p.amount
    invoice["payments"].append(part)
    _reduce_open(ctx, invoice, p.amount, "payment")
    if invoice["status"] == "paid" and invoice["settled_by"] == "payment":
        invoice["paid_value_date"] = p.value_date.isoformat()
    ctx.state.put(invoice_key(p.invoice_id), invoice)
    record: dict[str, Any] = ctx.state.get(invoice_payments_key(p.invoice_id)) or {
        "invoice_id": p.invoice_id, "currency": invoice["currency"],
        "invoice_amount": invoice["amount"], "paid": 0, "parts": [],
    }
    record["paid"] += p.amount
    record["parts"].append(part)
    ctx.state.put(invoice_payments_key(p.invoice_id), record)


# -- trade.credit_note ------------------------------------------------------------


@contract(
    "trade.credit_note",
    payload=CreditNotePayload,
    roles={"supplier"},
    summary="The seller credits part of an invoice (a return, a discount).",
)
def apply_credit_note(ctx: TxContext, p: CreditNotePayload) -> None:
    invoice = _visible_invoice(ctx, p.invoice_id)
    if ctx.author_org != invoice["seller"]:
        raise Rejected("not_seller",
                       f"payload.invoice_id: only the invoice's seller {invoice['seller']} "
                       "may issue a credit note")
    _admit_signers(ctx, (invoice["buyer"], invoice["seller"]))
    _unused(ctx, credit_note_key(p.credit_note_id), "duplicate_credit_note", "credit_note_id",
            p.credit_note_id)
    _check_open_balance(invoice, p.amount, "amount")
    ctx.state.put(credit_note_key(p.credit_note_id), {
        "credit_note_id": p.credit_note_id,
        "invoice_id": p.invoice_id,
        "order_id": invoice["order_id"],
        "buyer": invoice["buyer"],
        "seller": invoice["seller"],
        "amount": p.amount,
        "currency": invoice["currency"],
        "reason": p.reason,
        "issued_at": format_time(ctx.time),
        "height": ctx.height,
        "tx_id": ctx.tx.tx_id_hex,
    })
    invoice["credited"] += p.amount
    invoice["credit_note_ids"].append(p.credit_note_id)
    _reduce_open(ctx, invoice, p.amount, "credit_note")
    ctx.state.put(invoice_key(p.invoice_id), invoice)


# -- trade.dispute_open / trade.dispute_resolve -----------------------------------


@contract(
    "trade.dispute_open",
    payload=DisputeOpenPayload,
    roles={"buyer", "supplier"},
    summary="The buyer or the seller opens a dispute on an invoice (one open at a time).",
)
def apply_dispute_open(ctx: TxContext, p: DisputeOpenPayload) -> None:
    invoice = _visible_invoice(ctx, p.invoice_id)
    _admit_signers(ctx, (invoice["buyer"], invoice["seller"]))
    _unused(ctx, dispute_key(p.dispute_id), "duplicate_dispute", "dispute_id", p.dispute_id)
    if invoice["disputed"]:
        raise Rejected("already_disputed",
                       f"payload.invoice_id: invoice {p.invoice_id} already has the open "
                       f"dispute {invoice['dispute_id']}")
    ctx.state.put(dispute_key(p.dispute_id), {
        "dispute_id": p.dispute_id,
        "invoice_id": p.invoice_id,
        "order_id": invoice["order_id"],
        "buyer": invoice["buyer"],
        "seller": invoice["seller"],
        "opened_by": ctx.author_org,
        "reason": p.reason,
        "status": "open",
        "opened_at": format_time(ctx.time),
        "opened_height": ctx.height,
        "outcome": None,
        "adjustment_amount": None,
        "resolved_by": None,
        "resolved_at": None,
        "resolved_height": None,
        "tx_id": ctx.tx.tx_id_hex,
        "resolve_tx_id": None,
    })
    invoice["disputed"] = True
    invoice["dispute_id"] = p.dispute_id
    invoice["dispute_ids"].append(p.dispute_id)
    ctx.state.put(invoice_key(p.invoice_id), invoice)


@contract(
    "trade.dispute_resolve",
    payload=DisputeResolvePayload,
    roles={"buyer", "supplier", "platform"},
    summary="Buyer and seller together, or the platform alone, close a dispute.",
    countersigned_by="the other party, unless the platform resolves",
)
def apply_dispute_resolve(ctx: TxContext, p: DisputeResolvePayload) -> None:
    dispute: dict[str, Any] | None = ctx.state.get(dispute_key(p.dispute_id))
    platform = _holds_role(ctx, ctx.author_org, "platform")
    if dispute is None or not (
        platform or ctx.author_org in (dispute["buyer"], dispute["seller"])
    ):
        raise Rejected("unknown_dispute",
                       f"payload.dispute_id: no dispute {p.dispute_id!r} visible to "
                       f"{ctx.author_org}")
    if dispute["status"] != "open":
        raise Rejected("dispute_closed",
                       f"payload.dispute_id: dispute {p.dispute_id} was resolved at height "
                       f"{dispute['resolved_height']}")
    buyer, seller = dispute["buyer"], dispute["seller"]
    if not platform:
        _require_signed_by(ctx, (buyer, seller), "a dispute resolution without the platform")
    _admit_signers(ctx, (buyer, seller), extra_role="platform")
    adjustment = p.adjustment_amount or 0
    if p.outcome == "rejected" and adjustment:
        raise Rejected("adjustment_not_allowed",
                       "payload.adjustment_amount: a rejected dispute adjusts nothing; "
                       "use upheld or settled")
    invoice: dict[str, Any] = ctx.state.get(invoice_key(dispute["invoice_id"]))
    if adjustment:
        _check_open_balance(invoice, adjustment, "adjustment_amount")
        invoice["adjusted"] += adjustment
        _reduce_open(ctx, invoice, adjustment, "adjustment")
    dispute.update({
        "status": "resolved",
        "outcome": p.outcome,
        "adjustment_amount": adjustment,
        "resolved_by": sorted(set(ctx.signer_orgs)),
        "resolved_at": format_time(ctx.time),
        "resolved_height": ctx.height,
        "resolve_tx_id": ctx.tx.tx_id_hex,
    })
    ctx.state.put(dispute_key(p.dispute_id), dispute)
    invoice["disputed"] = False
    invoice["dispute_id"] = None
    ctx.state.put(invoice_key(dispute["invoice_id"]), invoice)
