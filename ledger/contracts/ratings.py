"""Ratings: keeping the buyer payment index in step with the trade records (specs/ratings.md).

This family registers no transaction type of its own yet. It registers
indexers (``ledger.contracts.base.indexer``) that run after the trade
contracts in the same transaction and keep the per-buyer aggregates of
:mod:`ledger.ratings` up to date, and it exposes :func:`index_certificate`,
the hook through which the credit-certificate family reports overdue
certificates as invoices of their obligor.

Every indexer reduces the record it touches to an
:class:`~ledger.ratings.Experience` and hands it to
:func:`~ledger.ratings.apply_experience`, which swaps the record's previous
contribution for the new one. Like a contract it is deterministic: the only
time it reads is the block date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ledger import currency as iso4217
from ledger.contracts.base import TxContext, indexer
from ledger.contracts.trade import dispute_key, invoice_key
from ledger.errors import Rejected
from ledger.ratings import Experience, StateWriter, apply_experience


def _converter(currency: str, fx_rate_to_usd: Mapping[str, int] | None
               ) -> tuple[int, int] | None:
    """The (numerator, denominator) rate to US dollars, or None when there is none."""
    if fx_rate_to_usd is not None:
        return int(fx_rate_to_usd["numerator"]), int(fx_rate_to_usd["denominator"])
    return (1, 1) if currency == "USD" else None


def invoice_experience(invoice: Mapping[str, Any]) -> Experience | None:
    """The rating view of a ``trade/invoice/<id>`` record (specs/ratings.md#terms).

    Each payment part is a settled term at its own value date; the open
    balance is the open term. Credited and adjusted amounts are neither. Each
    term is converted to US cents on its own with the invoice's recorded rate
    (``to_usd_minor``, half to even). An invoice in another currency than USD
    without a recorded rate cannot be weighed and is left out (``None``).
    """
    currency = str(invoice["currency"])
    rate = _converter(currency, invoice.get("fx_rate_to_usd"))
    if rate is None:
        return None
    num, den = rate
    settled = tuple(
        (iso4217.to_usd_minor(int(p["amount"]), currency, num, den),
         date.fromisoformat(p["value_date"]))
        for p in invoice["payments"]
    )
    open_amount = int(invoice["open"])
    return Experience(
        obligor=str(invoice["obligor"]),
        supplier=str(invoice["seller"]),
        source="invoice",
        due=date.fromisoformat(invoice["due_date"]),
        settled=settled,
        open=iso4217.to_usd_minor(open_amount, currency, num, den) if open_amount else 0,
        disputed=bool(invoice["disputed"]),
    )


def reindex_invoice(ctx: TxContext, invoice_id: str) -> None:
    """Recompute the contribution of one invoice after a trade transaction changed it."""
    invoice: dict[str, Any] | None = ctx.state.get(invoice_key(invoice_id))
    if invoice is None:  # the trade contract wrote it; this would be a bug
        raise Rejected("ratings_index", f"invoice {invoice_id} is missing after its update")
    apply_experience(ctx.state, ctx.time.date(), "invoice", invoice_id,
                     invoice_experience(invoice))


@indexer("trade.invoice", "trade.payment", "trade.credit_note", "trade.dispute_open")
def index_invoice_change(ctx: TxContext, payload: Any) -> None:
    """A new invoice, a payment part, a credit note or an opened dispute."""
    reindex_invoice(ctx, payload.invoice_id)


@indexer("trade.dispute_resolve")
def index_dispute_resolve(ctx: TxContext, payload: Any) -> None:
    """A resolved dispute brings its invoice back (with any adjustment applied)."""
    dispute: dict[str, Any] = ctx.state.get(dispute_key(payload.dispute_id))
    reindex_invoice(ctx, str(dispute["invoice_id"]))


# trade.invoice_ack changes nothing a rating reads, so it has no indexer.


def index_certificate(
    state: StateWriter,
    today: date,
    certificate_id: str,
    *,
    obligor: str,
    creditor: str,
    due_date: date,
    currency: str,
    fx_rate_to_usd: Mapping[str, int] | None,
    settled: Sequence[tuple[int, date]],
    open_amount: int,
) -> None:
    """Report a credit certificate's current state to the obligor's payment index.

    The certificates family calls this from its contracts (``state`` is
    ``ctx.state``, ``today`` is ``ctx.time.date()``) every time a certificate
    is issued, paid in part or in full, transferred or cancelled, with its
    state after the change:

    * ``obligor`` owes the certificate and is rated; ``creditor`` is the
      organisation the cap and the related-party rule treat as its supplier
      (the original issuer of the underlying receivable);
    * ``settled``: each payment as ``(amount in minor units of currency, value
      date)``; ``open_amount`` the unpaid amount, 0 once settled or cancelled;
    * ``fx_rate_to_usd``: ``{"numerator", "denominator"}`` as on an invoice.

    A certificate counts as an invoice of the obligor only when overdue: a
    part paid after ``due_date`` is a late term, and the open amount is a term
    once ``due_date`` has passed; a certificate settled on time contributes
    nothing. Policy ``ratings.count_overdue_certificates`` switches them off.
    """
    rate = _converter(currency, fx_rate_to_usd)
    if rate is None:
        raise Rejected("ratings_index",
                       f"certificate {certificate_id}: a {currency} amount needs a USD rate")
    num, den = rate
    experience = Experience(
        obligor=obligor,
        supplier=creditor,
        source="certificate",
        due=due_date,
        settled=tuple((iso4217.to_usd_minor(a, currency, num, den), d) for a, d in settled),
        open=iso4217.to_usd_minor(open_amount, currency, num, den) if open_amount else 0,
    )
    apply_experience(state, today, "certificate", certificate_id, experience)
