"""Read models over the shipments and trade state: event lookups and order timelines.

Pure functions of a state reader (the store, or an overlay with a prefix scan):
no I/O of their own, no clock. Visibility follows the parties the contracts
stored (specs/shipments.md#reads): an organisation sees an event it is a party
to, and the timeline of an order it is the buyer or the seller of. Whatever it
may not see is left out, so the caller cannot tell it exists.
"""

from __future__ import annotations

from typing import Any, Protocol

from ledger.contracts import Keys
from ledger.contracts import shipments as sh
from ledger.contracts import trade as tr
from ledger.encoding import loads_trusted

#: Most events one history read returns.
MAX_EVENTS = 1000


class Reader(tr.JsonReader, Protocol):
    def state_prefix_raw(self, prefix: str, *, limit: int = 1000) -> list[tuple[str, bytes]]:
        """Entries whose key starts with ``prefix``, in key order, values as stored."""
        ...


def visible(record: dict[str, Any] | None, org: str) -> bool:
    return record is not None and org in record["parties"]


def event_records(reader: Reader, prefix: str, org: str, *, limit: int = MAX_EVENTS
                  ) -> list[dict[str, Any]]:
    """The event records of one history index (``history_prefix``) ``org`` may see,
    in ledger order, at most ``limit``."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _key, raw in reader.state_prefix_raw(prefix, limit=MAX_EVENTS):
        event_id = loads_trusted(raw)
        if event_id in seen:
            continue
        seen.add(event_id)
        record = reader.get(sh.event_key(event_id))
        if visible(record, org):
            record["event_id"] = event_id
            out.append(record)
            if len(out) >= limit:
                break
    return out


def _entry(time: str, flow: str, kind: str, summary: str, **refs: Any) -> dict[str, Any]:
    return {"time": time, "flow": flow, "kind": kind, "summary": summary,
            **{k: v for k, v in refs.items() if v is not None}}


def event_kind(reader: Reader, record: dict[str, Any]) -> str:
    """The timeline lane of a shipment event: ``customs`` for a customs step,
    ``warehouse`` for a scan by a warehouse, else ``shipment``."""
    if record["biz_step"] in sh.CUSTOMS_STEPS:
        return "customs"
    org = reader.get(Keys.org(record["author_org"]))
    if org is not None and "warehouse" in org["roles"]:
        return "warehouse"
    return "shipment"


def order_timeline(reader: Reader, order_id: str, org: str) -> dict[str, Any] | None:
    """The timeline of an order across the three flows, or None when ``org`` is not its
    buyer or seller (or there is no such order)."""
    order: dict[str, Any] | None = reader.get(tr.order_key(order_id))
    if order is None or org not in (order["buyer"], order["seller"]):
        return None
    entries = [_entry(order["created_at"], "information", "order",
                      f"Order {order_id}: {order['total']} {order['currency']} "
                      f"({order['buyer']} buys from {order['seller']})",
                      tx_id=order["tx_id"], height=order["height"])]
    invoices: list[dict[str, Any]] = []
    for invoice_id in order["invoice_ids"]:
        inv: dict[str, Any] = reader.get(tr.invoice_key(invoice_id))
        invoices.append(inv)
        entries.append(_entry(inv["created_at"], "information", "invoice",
                              f"Invoice {invoice_id}: {inv['amount']} {inv['currency']}, "
                              f"due {inv['due_date']}", invoice_id=invoice_id,
                              tx_id=inv["tx_id"], height=inv["height"]))
        if inv["acknowledged"]:
            entries.append(_entry(inv["acknowledged_at"], "information", "acknowledgement",
                                  f"{inv['buyer']} acknowledged invoice {invoice_id} "
                                  f"({inv['acknowledged_amount']} {inv['currency']} payable)",
                                  invoice_id=invoice_id, height=inv["acknowledged_height"]))
        for part in inv["payments"]:
            entries.append(_entry(part["recorded_at"], "finance", "payment",
                                  f"Payment {part['payment_id']}: {part['amount']} "
                                  f"{inv['currency']} (value date {part['value_date']})",
                                  invoice_id=invoice_id, payment_id=part["payment_id"],
                                  height=part["height"]))
        for note_id in inv["credit_note_ids"]:
            note: dict[str, Any] = reader.get(tr.credit_note_key(note_id))
            entries.append(_entry(note["issued_at"], "finance", "credit_note",
                                  f"Credit note {note_id}: {note['amount']} {note['currency']}",
                                  invoice_id=invoice_id, tx_id=note["tx_id"],
                                  height=note["height"]))
        for dispute_id in inv["dispute_ids"]:
            dispute: dict[str, Any] = reader.get(tr.dispute_key(dispute_id))
            entries.append(_entry(dispute["opened_at"], "information", "dispute_opened",
                                  f"Dispute {dispute_id} opened by {dispute['opened_by']}",
                                  invoice_id=invoice_id, tx_id=dispute["tx_id"],
                                  height=dispute["opened_height"]))
            if dispute["status"] == "resolved":
                entries.append(_entry(dispute["resolved_at"], "information",
                                      "dispute_resolved",
                                      f"Dispute {dispute_id} resolved: {dispute['outcome']}",
                                      invoice_id=invoice_id, tx_id=dispute["resolve_tx_id"],
                                      height=dispute["resolved_height"]))
    events = linked_events(reader, order_id, org)
    for record in events:
        entries.append(_entry(record["event_time"], "logistics", event_kind(reader, record),
                              _event_summary(record), event_id=record["event_id"],
                              biz_step=record["biz_step"], disposition=record["disposition"],
                              location=record["biz_location"] or record["read_point"],
                              read_point=record["read_point"], epcs=record["epcs"],
                              recorded_by=record["author_org"], tx_id=record["tx_id"],
                              height=record["height"]))
    # Ledger order: what was recorded first comes first (a stable sort keeps the
    # order of the records within one block).
    entries.sort(key=lambda e: e["height"])
    locations = list(dict.fromkeys(e["location"] for e in entries if e.get("location")))
    return {
        "order_id": order_id,
        "buyer": order["buyer"],
        "seller": order["seller"],
        "currency": order["currency"],
        "total": order["total"],
        "status": order["status"],
        "invoices": [{"invoice_id": i["invoice_id"], "amount": i["amount"],
                      "open": i["open"], "status": i["status"],
                      "acknowledged": i["acknowledged"]} for i in invoices],
        "locations": locations,
        "entries": entries,
    }


def linked_events(reader: Reader, order_id: str, org: str) -> list[dict[str, Any]]:
    """Events that name the order as a business transaction, and the later events of
    the same goods, as far as ``org`` may see them, in ledger order."""
    direct = event_records(reader, sh.history_prefix(
        "btx", sh.order_biz_transaction(order_id)), org)
    found = {r["event_id"]: r for r in direct}
    if not direct:
        return []
    # The goods' other events count from the order's first scan on, unless they name
    # another order (a returnable asset serves many orders).
    since = min(r["height"] for r in direct)
    goods = list(dict.fromkeys(epc for r in direct for epc in r["epcs"]))
    for epc in goods[:200]:
        for record in event_records(reader, sh.history_prefix("epc", epc), org, limit=200):
            if record["height"] >= since and (not record["orders"]
                                              or order_id in record["orders"]):
                found.setdefault(record["event_id"], record)
    return sorted(found.values(), key=lambda r: (r["height"], r["tx_id"], r["index"]))


def _event_summary(record: dict[str, Any]) -> str:
    step = (record["biz_step"] or "observed").rsplit("/", 1)[-1].replace("_", " ")
    where = record["biz_location"] or record["read_point"]
    count = len(record["epcs"]) + len(record["epc_classes"])
    text = f"{record['type']}: {step}, {count} identifier{'s' if count != 1 else ''}"
    if where:
        text += f" at {where}"
    return text + f" (by {record['author_org']})"
