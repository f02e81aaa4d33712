"""Shipments: the logistics flow as GS1 EPCIS 2.0 events (specs/shipments.md).

Two transaction types:

* ``shipments.register`` ties GS1 location and party identifiers (GLN, PGLN, as
  ``sgln``/``pgln`` URNs or Digital Link URIs) to an organisation, so that the
  owners of the places an event names become parties to it;
* ``shipments.capture`` records EPCIS events, one event or an EPCISDocument
  batch, validated by :mod:`ledger.epcis` and kept unchanged in the signed
  transaction. Every custody and aggregation rule of this family lives here.

Derived state (all rebuildable from the chain, specs/shipments.md#state): one
record per event, a per-identifier history index and current record (location,
custody, transit, aggregation parent and children, last customs step), a
per-location and a per-business-transaction index. Contracts are deterministic:
events are applied in ledger order, times come from the events and the block.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import Field, PrivateAttr, model_validator

from ledger.contracts.base import Keys, Payload, TxContext, contract
from ledger.contracts.membership import ORG_ID
from ledger.contracts.trade import JsonReader, order_key
from ledger.epcis import Event, normalise_epc, validate_document
from ledger.errors import MalformedRecord, Rejected
from ledger.timefmt import format_time

#: Most events one capture transaction may carry (specs/shipments.md#limits).
MAX_EVENTS: Final = 1000
#: How far an eventTime may lie ahead of the block time (the ledger's clock skew).
MAX_AHEAD: Final = timedelta(minutes=5)
#: Most identifiers one registration may carry.
MAX_IDENTIFIERS: Final = 100

GLN_PREFIX: Final = "https://id.gs1.org/414/"
PGLN_PREFIX: Final = "https://id.gs1.org/417/"
#: The business transaction URI that links an event to a TradeLedger order.
ORDER_URN_PREFIX: Final = "urn:tradeledger:order:"

#: Business steps recorded as customs and inspection steps.
CUSTOMS_STEPS: Final = frozenset({"inspecting", "holding", "accepting"})
#: Business steps after which the recording organisation holds the goods.
TAKING_CUSTODY: Final = frozenset({"commissioning", "receiving", "accepting", "collecting"})

ROLES_CAPTURE: Final = frozenset({"logistics", "warehouse", "supplier", "buyer", "inspector"})
ROLES_REGISTER: Final = ROLES_CAPTURE | {"platform"}


# -- state keys (specs/shipments.md#state) ---------------------------------------------


def event_key(event_id: str) -> str:
    return f"shipments/event/{event_id}"


def epc_key(epc: str) -> str:
    """The current record of one identifier (instance or class)."""
    return f"shipments/epc/{epc}"


#: The history indexes: by identifier (``epc``), location (``loc``), business transaction
#: (``btx``). Entry ``seq`` of an index holds one event id.
INDEXES: Final = ("epc", "loc", "btx")


def history_key(index: str, value: str, seq: int) -> str:
    return f"shipments/{index}_hist/{value}/{seq:010d}"


def history_prefix(index: str, value: str) -> str:
    return f"shipments/{index}_hist/{value}/"


def counter_key(index: str, value: str) -> str:
    """The event count of a location or business transaction (an identifier's count is
    in its current record)."""
    return f"shipments/{index}/{value}"


def registration_key(identifier: str) -> str:
    return f"shipments/id/{identifier}"


def order_biz_transaction(order_id: str) -> str:
    """The bizTransaction value that links an event to the order ``order_id``."""
    return ORDER_URN_PREFIX + order_id


def base_location(identifier: str) -> str:
    """A GLN with its extension (``.../414/<gln>/254/<ext>``) cut back to the GLN."""
    if identifier.startswith(GLN_PREFIX):
        return identifier.split("/254/", 1)[0]
    return identifier


def within(location: str, destination: str) -> bool:
    """True when ``location`` is ``destination`` or one of its sub-locations (AI 254)."""
    return location == destination or (
        destination.startswith(GLN_PREFIX) and "/254/" not in destination
        and location.startswith(destination + "/254/"))


#: The fields of an identifier's current record; a stored record leaves out the fields
#: still at these values (specs/shipments.md#state), :func:`epc_record` fills them in.
EPC_DEFAULTS: Final[dict[str, Any]] = {
    "count": 0, "location": None, "read_point": None, "biz_step": None, "disposition": None,
    "custodian": None, "in_transit": None, "parent": None, "children": [],
    "associated_with": None, "associated": [], "customs": None, "last_event": None,
    "last_event_time": None, "deleted": False, "orders": [],
}


def epc_record(state: JsonReader, epc: str) -> dict[str, Any] | None:
    """The current record of ``epc`` with every field, or None when never seen."""
    stored: dict[str, Any] | None = state.get(epc_key(epc))
    if stored is None:
        return None
    return {**EPC_DEFAULTS, "epc": epc, **stored}


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "epc" and EPC_DEFAULTS.get(k, ...) != v}


# -- payloads ---------------------------------------------------------------------------


class CapturePayload(Payload):
    """``{"epcis": <EPCISDocument | EPCISQueryDocument | one event>}``, JSON-LD as captured."""

    epcis: dict[str, Any]
    _events: list[Event] = PrivateAttr(default_factory=list)
    _base: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _validate_epcis(self) -> CapturePayload:
        try:
            events = validate_document(self.epcis)
        except MalformedRecord as exc:
            inner = exc.message.removeprefix(f"{exc.field}: ")
            field = "epcis" if exc.field == "$" else f"epcis.{exc.field}"
            raise MalformedRecord(inner, field=field, rule=exc.rule) from None
        if not events:
            raise MalformedRecord("the document holds no event", field="epcis.epcisBody.eventList",
                                  rule="min_items")
        if len(events) > MAX_EVENTS:
            raise MalformedRecord(f"at most {MAX_EVENTS} events per transaction",
                                  field="epcis.epcisBody.eventList", rule="max_items")
        kind = self.epcis.get("type")
        self._base = ("epcis.epcisBody.eventList" if kind == "EPCISDocument" else
                      "epcis.epcisBody.queryResults.resultsBody.eventList"
                      if kind == "EPCISQueryDocument" else "")
        self._events = events
        return self

    @property
    def events(self) -> list[Event]:
        return self._events

    def path(self, index: int, field: str = "") -> str:
        """The payload path of event ``index`` (and of ``field`` inside it)."""
        where = f"payload.{self._base}[{index}]" if self._base else "payload.epcis"
        return f"{where}.{field}" if field else where


Identifier = Annotated[str, Field(min_length=1, max_length=512)]


class RegisterPayload(Payload):
    """GLNs (locations) and PGLNs (parties) that belong to ``org`` (default: the author)."""

    identifiers: list[Identifier] = Field(min_length=1, max_length=MAX_IDENTIFIERS)
    org: Annotated[str, Field(pattern=ORG_ID)] | None = None


# -- shipments.register -----------------------------------------------------------------


@contract(
    "shipments.register",
    payload=RegisterPayload,
    roles=ROLES_REGISTER,
    summary="Tie GS1 locations (GLN) and parties (PGLN) to an organisation.",
    public=True,
)
def apply_register(ctx: TxContext, p: RegisterPayload) -> None:
    # 1. The owner is the author's organisation unless the platform registers for another.
    owner = p.org or ctx.author_org
    if owner != ctx.author_org:
        author: dict[str, Any] = ctx.state.get(Keys.org(ctx.author_org))
        if "platform" not in author["roles"]:
            raise Rejected("not_platform",
                           f"payload.org: only the platform registers identifiers for another "
                           f"organisation; {ctx.author_org} may register for itself only")
    record: dict[str, Any] | None = ctx.state.get(Keys.org(owner))
    if record is None or record["status"] != "active":
        raise Rejected("unknown_org", f"payload.org: no active organisation {owner!r}")
    seen: set[str] = set()
    for i, raw in enumerate(p.identifiers):
        # 2. Each identifier is a GLN or PGLN, in any spelling.
        try:
            key = normalise_epc(raw, field=f"payload.identifiers[{i}]")
        except MalformedRecord as exc:
            raise Rejected("bad_identifier", exc.message) from exc
        if not key.startswith((GLN_PREFIX, PGLN_PREFIX)):
            raise Rejected("not_a_location",
                           f"payload.identifiers[{i}]: {raw!r} is not a GLN (sgln, 414) or "
                           "PGLN (pgln, 417) identifier")
        # 3. It is new in this payload and not registered yet.
        if key in seen:
            raise Rejected("duplicate_identifier",
                           f"payload.identifiers[{i}]: {key} is listed twice")
        seen.add(key)
        held: dict[str, Any] | None = ctx.state.get(registration_key(key))
        if held is not None:
            raise Rejected("identifier_taken",
                           f"payload.identifiers[{i}]: {key} is registered to {held['org']} "
                           f"since height {held['height']}")
        ctx.state.put(registration_key(key), {
            "identifier": key, "given": raw, "org": owner,
            "kind": "location" if key.startswith(GLN_PREFIX) else "party",
            "height": ctx.height, "tx_id": ctx.tx.tx_id_hex,
        })
    ctx.parties.add(owner)


# -- shipments.capture ------------------------------------------------------------------


class _Capture:
    """The work of one capture transaction: state reads cached per identifier."""

    def __init__(self, ctx: TxContext, p: CapturePayload) -> None:
        self.ctx = ctx
        self.p = p
        self.records: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str | None] = {}
        self.counters: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any] | None] = {}
        self.record_time = format_time(ctx.time)

    # -- cached reads and writes ----------------------------------------------------

    def record(self, epc: str) -> dict[str, Any]:
        found = self.records.get(epc)
        if found is None:
            found = epc_record(self.ctx.state, epc) or {**EPC_DEFAULTS, "epc": epc}
            self.records[epc] = found
        return found

    def owner(self, identifier: str) -> str | None:
        if identifier not in self.owners:
            held = self.ctx.state.get(registration_key(identifier))
            if held is None and identifier != base_location(identifier):
                held = self.ctx.state.get(registration_key(base_location(identifier)))
            self.owners[identifier] = None if held is None else str(held["org"])
        return self.owners[identifier]

    def counter(self, key: str) -> dict[str, Any]:
        found = self.counters.get(key)
        if found is None:
            found = self.ctx.state.get(key) or {"count": 0}
            self.counters[key] = found
        return found

    def flush(self) -> None:
        for epc, rec in self.records.items():
            self.ctx.state.put(epc_key(epc), _compact(rec))
        for key, rec in self.counters.items():
            self.ctx.state.put(key, rec)

    # -- rules -----------------------------------------------------------------------

    def apply(self) -> None:
        seen: set[str] = set()
        for i, event in enumerate(self.p.events):
            # 1. The event id (given, or the CBV 2.0 hash) is new on the ledger.
            if event.event_id in seen or self.ctx.state.exists(event_key(event.event_id)):
                where = "eventID" if not event.event_id_is_hash else ""
                raise Rejected("duplicate_event_id",
                               f"{self.p.path(i, where)}: event {event.event_id} is already "
                               "recorded" + (" (the CBV 2.0 hash of an identical event)"
                                             if event.event_id_is_hash else ""))
            seen.add(event.event_id)
            # 2. It happened before it is recorded (give or take the clock skew).
            if event.event_time > self.ctx.time + MAX_AHEAD:
                raise Rejected("event_in_future",
                               f"{self.p.path(i, 'eventTime')}: {format_time(event.event_time)} "
                               f"is after the ledger time {format_time(self.ctx.time)}")
            # 3. Aggregation and association keep parent and children consistent.
            if event.event_type == "AggregationEvent":
                self.relate(i, event, "parent", "children")
            elif event.event_type == "AssociationEvent":
                self.relate(i, event, "associated_with", "associated")
            # 4. Goods are received only where they were shipped to.
            if event.biz_step == "receiving":
                self.receive(i, event)
            # 5. Current records, indexes, parties.
            self.record_event(i, event)
        self.flush()

    def goods(self, event: Event) -> list[str]:
        """The instance identifiers an event moves: its EPCs, children and parent."""
        return list(event.epcs)

    def ancestors(self, epc: str) -> list[str]:
        chain: list[str] = []
        current = self.record(epc)["parent"]
        while current is not None and current not in chain and len(chain) < 64:
            chain.append(current)
            current = self.record(current)["parent"]
        return chain

    def relate(self, i: int, event: Event, up: str, down: str) -> None:
        parent = event.parent_id
        kind = "aggregated into" if up == "parent" else "associated with"
        for j, child in enumerate(event.child_epcs):
            where = self.p.path(i, f"childEPCs[{j}]")
            rec = self.record(child)
            if parent is None:
                continue
            if child == parent:
                raise Rejected("aggregation_cycle", f"{where}: {child} cannot be {kind} itself")
            # An aggregated child is in one container at a time; an association
            # (a sensor on an asset) may move, so ADD re-associates.
            moving = up == "associated_with" and event.action == "ADD"
            if event.action in ("ADD", "OBSERVE") and not moving \
                    and rec[up] not in (None, parent):
                raise Rejected("child_in_other_parent",
                               f"{where}: {child} is {kind} {rec[up]}; a DELETE event must "
                               f"take it out before it can be {kind} {parent}")
            if event.action == "ADD" and up == "parent" and child in self.ancestors(parent):
                raise Rejected("aggregation_cycle",
                               f"{where}: {child} contains {parent}, so {parent} cannot "
                               f"contain {child}")
            if event.action == "DELETE" and rec[up] != parent:
                raise Rejected("not_in_parent",
                               f"{where}: {child} is not {kind} {parent}"
                               + (f" but {rec[up]}" if rec[up] else ""))
        if parent is None or event.action == "OBSERVE":
            return
        parent_rec = self.record(parent)
        if event.action == "ADD":
            for child in event.child_epcs:
                before = self.record(child)[up]
                if before not in (None, parent):
                    old = self.record(before)
                    old[down] = [c for c in old[down] if c != child]
                self.record(child)[up] = parent
                if child not in parent_rec[down]:
                    parent_rec[down] = [*parent_rec[down], child]
            return
        # DELETE: the listed children, or every child when none is listed.
        leaving = list(event.child_epcs) or list(parent_rec[down])
        for child in leaving:
            self.record(child)[up] = None
        parent_rec[down] = [c for c in parent_rec[down] if c not in leaving]

    def receive(self, i: int, event: Event) -> None:
        where_field = "bizLocation.id" if event.biz_location else "readPoint.id"
        location = event.biz_location or event.read_point
        if location is None:
            return
        for epc in self.goods(event):
            for holder in (epc, *self.ancestors(epc)):
                transit = self.record(holder)["in_transit"]
                if transit is None:
                    continue
                destination = transit.get("to")
                if destination is not None and not within(location, destination):
                    raise Rejected(
                        "wrong_receiving_location",
                        f"{self.p.path(i, where_field)}: {epc} was shipped to {destination} "
                        f"(event {transit['event_id']}), not to {location}")
                break

    def record_event(self, i: int, event: Event) -> None:
        ctx = self.ctx
        parties = {ctx.author_org}
        named = [event.read_point, event.biz_location,
                 *(s.value for s in event.source_list), *(d.value for d in event.destination_list)]
        for identifier in named:
            if identifier is not None:
                org = self.owner(identifier)
                if org is not None:
                    parties.add(org)
        # Orders: those the event names; without any, those its goods were last moved
        # under (need-to-know follows the goods, section 2.4).
        named_orders = [btx.value[len(ORDER_URN_PREFIX):] for btx in event.biz_transactions
                        if btx.value.startswith(ORDER_URN_PREFIX)]
        goods = self.goods(event)
        candidates = named_orders or [o for epc in goods for o in self.record(epc)["orders"]]
        orders: list[str] = []
        for order_id in dict.fromkeys(candidates):
            if order_id not in self.orders:
                self.orders[order_id] = ctx.state.get(order_key(order_id))
            order = self.orders[order_id]
            if order is not None:
                parties.update((order["buyer"], order["seller"]))
                orders.append(order_id)
        destination = next((d.value for d in event.destination_list if d.type == "location"),
                           None)
        event_time = format_time(event.event_time)
        custody = (event.biz_location and self.owner(event.biz_location)) or ctx.author_org
        # Current records of the goods.
        for epc in goods:
            rec = self.record(epc)
            if named_orders:
                rec["orders"] = orders
            if event.biz_location is not None:
                rec["location"] = event.biz_location
            if event.read_point is not None:
                rec["read_point"] = event.read_point
            if event.biz_step is not None:
                rec["biz_step"] = event.biz_step
            if event.disposition is not None:
                rec["disposition"] = event.disposition
            if event.biz_step == "shipping":
                rec["in_transit"] = {"to": destination, "event_id": event.event_id,
                                     "from": event.biz_location or event.read_point}
            elif event.biz_step == "receiving":
                rec["in_transit"] = None
            if event.biz_step in TAKING_CUSTODY or rec["custodian"] is None:
                rec["custodian"] = custody
            if event.biz_step in CUSTOMS_STEPS:
                rec["customs"] = {"step": event.biz_step, "disposition": event.disposition,
                                  "event_id": event.event_id, "org": ctx.author_org,
                                  "time": event_time}
            if event.event_type == "ObjectEvent" and event.action == "DELETE":
                rec["deleted"] = True
            rec["last_event"] = event.event_id
            rec["last_event_time"] = event_time
        # History indexes: identifiers (instances and classes), locations, transactions.
        for epc in (*event.epcs, *event.epc_classes):
            rec = self.record(epc)
            ctx.state.put(history_key("epc", epc, rec["count"]), event.event_id)
            rec["count"] += 1
        places = dict.fromkeys(x for x in (event.read_point, event.biz_location) if x)
        values = dict.fromkeys(b.value for b in event.biz_transactions)
        for index, keys in (("loc", places), ("btx", values)):
            for value in keys:
                counter = self.counter(counter_key(index, value))
                ctx.state.put(history_key(index, value, counter["count"]), event.event_id)
                counter["count"] += 1
        # The event record: what reads filter and sort on; the rest is in the raw event.
        ctx.state.put(event_key(event.event_id), {
            "type": event.event_type,
            "event_time": event_time,
            "biz_step": event.biz_step,
            "disposition": event.disposition,
            "read_point": event.read_point,
            "biz_location": event.biz_location,
            "epcs": list(event.epcs),
            "epc_classes": list(event.epc_classes),
            "orders": orders,
            "author_org": ctx.author_org,
            "parties": sorted(parties),
            "tx_id": ctx.tx.tx_id_hex,
            "index": i,
            "height": ctx.height,
            "record_time": self.record_time,
        })
        ctx.parties.update(parties)


@contract(
    "shipments.capture",
    payload=CapturePayload,
    roles=ROLES_CAPTURE,
    summary="Record GS1 EPCIS 2.0 events (one event or an EPCISDocument batch).",
)
def apply_capture(ctx: TxContext, p: CapturePayload) -> None:
    _Capture(ctx, p).apply()
