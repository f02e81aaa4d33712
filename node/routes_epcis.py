"""EPCIS query and order timeline routes (specs/shipments.md#reads).

* ``GET /v1/epcis/events?epc=|location=|biz_transaction=`` returns the events
  the caller may see as an EPCIS 2.0 ``EPCISQueryDocument``;
* ``GET /v1/orders/{order_id}/timeline`` returns an order's timeline across the
  information, logistics and finance flows (the order's buyer and seller only);
* ``GET /explorer/orders/{order_id}`` renders that timeline as a page.

Visibility is decided by :mod:`ledger.traceability` from the parties the
contracts stored, in reads that no block commit overlapped (``read_at_head``); a record the caller may not see is answered 404 (never 403),
so its existence does not leak. Routes hold no business rules.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse

from ledger import traceability
from ledger.contracts import shipments as sh
from ledger.encoding import loads_trusted
from ledger.epcis import normalise_epc
from ledger.errors import MalformedRecord, NotFound
from ledger.timefmt import format_time
from node.auth import Caller, member
from node.explorer import Explorer, PageError
from node.service import LedgerNode

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
TX_CACHE = 256
CallerDep = Annotated[Caller, Depends(member)]


class EventSource:
    """Raw events out of committed capture transactions (a small cache of parsed payloads)."""

    def __init__(self, node: LedgerNode) -> None:
        self.node = node
        self._payloads: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # routes run in a thread pool

    def payload(self, tx_id: str) -> dict[str, Any]:
        with self._lock:
            found = self._payloads.get(tx_id)
            if found is not None:
                self._payloads.move_to_end(tx_id)
                return found
        body = self.node.store.tx_body(tx_id)
        if body is None:
            raise NotFound(f"transaction {tx_id} is not committed", code="unknown_tx")
        # Committed bodies passed the strict parser at intake.
        epcis: dict[str, Any] = loads_trusted(body)["payload"]["epcis"]
        with self._lock:
            self._payloads[tx_id] = epcis
            if len(self._payloads) > TX_CACHE:
                self._payloads.popitem(last=False)
        return epcis

    def event(self, record: dict[str, Any]) -> dict[str, Any]:
        """The event as captured, with the prefixes of its document, its eventID (the
        CBV 2.0 hash when it had none) and its recordTime (the block time) when absent."""
        doc = self.payload(record["tx_id"])
        kind = doc.get("type")
        if kind == "EPCISDocument":
            raw = doc["epcisBody"]["eventList"][record["index"]]
        elif kind == "EPCISQueryDocument":
            raw = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"][record["index"]]
        else:
            raw = doc
        out = dict(raw)
        if raw is not doc:
            declared = _prefix_objects(doc.get("@context"))
            if declared:
                own = out.get("@context")
                own_list = own if isinstance(own, list) else [] if own is None else [own]
                out["@context"] = [*declared, *own_list]
        out.setdefault("eventID", record["event_id"])
        out.setdefault("recordTime", record["record_time"])
        return out


def _prefix_objects(context: object) -> list[dict[str, Any]]:
    items = context if isinstance(context, list) else [context]
    return [item for item in items if isinstance(item, dict)]


def query_document(events: list[dict[str, Any]], *, created: str) -> dict[str, Any]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": created,
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                       "resultsBody": {"eventList": events}}},
    }


def install(app: FastAPI, node: LedgerNode) -> None:
    """Register the EPCIS query, the timeline and the timeline page on ``app``."""
    source = EventSource(node)
    explorer = Explorer(node)

    @app.get("/v1/epcis/events", tags=["shipments"])
    def epcis_events(
        caller: CallerDep,
        epc: str | None = Query(None, description="an EPC URN or Digital Link URI"),
        location: str | None = Query(None, description="a readPoint or bizLocation"),
        biz_transaction: str | None = Query(None, description="a business transaction URI"),
        limit: int = Query(100, ge=1, le=traceability.MAX_EVENTS),
    ) -> Response:
        """The events for one EPC, location or business transaction the caller may see,
        as an EPCIS 2.0 EPCISQueryDocument, in ledger order."""
        given = {k: v for k, v in (("epc", epc), ("location", location),
                                   ("biz_transaction", biz_transaction)) if v is not None}
        if len(given) != 1:
            raise MalformedRecord("give exactly one of epc, location, biz_transaction",
                                  field="query", rule="one_of")
        (name, value), = given.items()
        key = normalise_epc(value, field=name)
        index = {"epc": "epc", "location": "loc", "biz_transaction": "btx"}[name]
        prefix = sh.history_prefix(index, key)
        # One consistent read: retried if a block committed meanwhile.
        events = node.read_at_head(lambda _state, _head: [
            source.event(r)
            for r in traceability.event_records(node.store, prefix, caller.org, limit=limit)])
        body = query_document(events, created=format_time(node.clock.now()))
        return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
                        media_type="application/ld+json")

    def timeline_of(order_id: str, caller: Caller) -> dict[str, Any]:
        found = node.read_at_head(
            lambda _state, _head: traceability.order_timeline(node.store, order_id, caller.org))
        if found is None:
            raise NotFound(f"no order {order_id!r} visible to {caller.org}",
                           code="unknown_order")
        return found

    @app.get("/v1/orders/{order_id}/timeline", tags=["shipments"])
    def order_timeline(order_id: str, caller: CallerDep) -> dict[str, Any]:
        """The order's records across the information, logistics and finance flows, by time.
        Only the order's buyer and seller may read it."""
        return timeline_of(order_id, caller)

    def timeline_page(request: Request, order_id: str) -> HTMLResponse:
        """The page, for the member signed in to the explorer (its session)."""
        def build(caller: Caller) -> dict[str, Any]:
            try:
                timeline = timeline_of(order_id, caller)
            except NotFound as exc:
                raise PageError(404, "Order not found", exc.message) from exc
            return {"timeline": timeline, "org_names": explorer.org_names,
                    "viewer": caller.org}

        return explorer.page(request, "timeline.html", build)

    app.add_api_route("/explorer/orders/{order_id}", timeline_page, methods=["GET"],
                      include_in_schema=False, response_class=HTMLResponse)
