"""The shipments contracts (specs/shipments.md): registration, capture, custody, aggregation.

Each test founds a small consortium and applies one transaction per block
through the real executor. A refused transaction must leave no write at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.chain import make_genesis
from ledger.contracts import shipments as sh
from ledger.contracts import trade as tr
from ledger.encoding import loads
from ledger.epcis import event_hash
from ledger.executor import BlockContext, BlockExecution, execute_block
from ledger.keys import SigningKey
from ledger.state import MemoryState
from ledger.tx import make_body, sign_tx

CHAIN = "shipments-test"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"

ORG_ROLES: dict[str, list[str]] = {
    "platform": ["platform"],
    "supplier-a": ["supplier"],
    "buyer-a": ["buyer"],
    "logistics-a": ["logistics"],
    "warehouse-a": ["warehouse"],
    "inspector-a": ["inspector"],
    "bank-a": ["bank"],
}
ADMIN = {org: SigningKey(bytes([2 * i + 1]) * 32) for i, org in enumerate(ORG_ROLES)}
MEMBER = {org: SigningKey(bytes([2 * i + 2]) * 32) for i, org in enumerate(ORG_ROLES)}
NODE = SigningKey(bytes([200]) * 32)
GENESIS_WRITES = {
    key: value
    for key, value in make_genesis({
        "chain_id": CHAIN, "name": "Shipments tests",
        "organisations": [
            {"id": org, "name": org.title(), "roles": roles,
             "admin_keys": [ADMIN[org].public_key_hex],
             "member_keys": [MEMBER[org].public_key_hex],
             "node_keys": [NODE.public_key_hex] if org == "platform" else []}
            for org, roles in ORG_ROLES.items()],
        "quorum": {"validators": ["platform"], "threshold": 1},
    }, founder=ADMIN["platform"], time=T0).state_writes.items()
    if value is not None
}

# Places: the factory (supplier), the port hub (logistics), the bonded warehouse.
FACTORY = "urn:epc:id:sgln:4012345.00001.0"
FACTORY_DL = "https://id.gs1.org/414/4012345000016"
HUB = "urn:epc:id:sgln:4012345.00002.0"
WAREHOUSE = "urn:epc:id:sgln:4012345.00003.0"
WAREHOUSE_DL = "https://id.gs1.org/414/4012345000030"
WAREHOUSE_DOCK = "urn:epc:id:sgln:4012345.00003.7"
CASE1 = "urn:epc:id:sgtin:4012345.011111.1"
CASE2 = "urn:epc:id:sgtin:4012345.011111.2"
CASE1_DL = "https://id.gs1.org/01/04012345111118/21/1"
PALLET = "urn:epc:id:sscc:4012345.0000000001"
PALLET2 = "urn:epc:id:sscc:4012345.0000000002"
PALLET_DL = "https://id.gs1.org/00/040123450000000016"


class Ledger:
    def __init__(self) -> None:
        self.state = MemoryState(GENESIS_WRITES)
        self.height = 0
        self.time = T0
        self.nonce = 0

    def submit(self, tx_type: str, payload: Mapping[str, Any], *orgs: str) -> BlockExecution:
        self.height += 1
        self.time += timedelta(minutes=10)
        self.nonce += 1
        body = make_body(tx_type=tx_type, chain_id=CHAIN, author=MEMBER[orgs[0]],
                         payload=payload, nonce=f"nonce-{self.nonce:06d}", created_at=self.time)
        tx = sign_tx(body, [MEMBER[o] for o in orgs])
        execution = execute_block(self.state, [tx], BlockContext(CHAIN, self.height, self.time))
        self.state.apply(execution.state.writes)
        return execution

    def ok(self, tx_type: str, payload: Mapping[str, Any], *orgs: str) -> frozenset[str]:
        execution = self.submit(tx_type, payload, *orgs)
        assert not execution.refused, execution.refused[0].error.to_problem()
        return execution.accepted[0].parties

    def refused(self, code: str, tx_type: str, payload: Mapping[str, Any], *orgs: str) -> str:
        before = dict(self.state.items)
        execution = self.submit(tx_type, payload, *orgs)
        assert not execution.accepted, f"{tx_type} was accepted; expected {code}"
        error = execution.refused[0].error
        assert error.code == code, error.to_problem()
        assert self.state.items == before
        return error.message

    def get(self, key: str) -> Any:
        raw = self.state.get_raw(key)
        return None if raw is None else loads(raw)

    def capture(self, *events: dict[str, Any], by: str = "logistics-a") -> frozenset[str]:
        return self.ok("shipments.capture", {"epcis": doc(*events)}, by)

    def refuse_capture(self, code: str, *events: dict[str, Any], by: str = "logistics-a"
                       ) -> str:
        return self.refused(code, "shipments.capture", {"epcis": doc(*events)}, by)

    def state_prefix_raw(self, prefix: str, *, limit: int = 1000) -> list[tuple[str, bytes]]:
        return sorted((k, v) for k, v in self.state.items.items() if k.startswith(prefix))[:limit]

    def epc(self, epc: str) -> Any:
        return sh.epc_record(self, epc)


def doc(*events: dict[str, Any]) -> dict[str, Any]:
    return {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-03-02T08:00:00Z", "epcisBody": {"eventList": list(events)}}


_minute = 0


def event(kind: str = "ObjectEvent", **fields: Any) -> dict[str, Any]:
    """An event with a fresh eventTime (so hashes differ) and the given fields."""
    global _minute
    _minute += 1
    base: dict[str, Any] = {"type": kind,
                            "eventTime": (T0 - timedelta(days=1) + timedelta(minutes=_minute)).isoformat(),
                            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE"}
    base.update(fields)
    return base


def ship(epcs: list[str], *, to: str | None = WAREHOUSE, at: str = HUB,
         **fields: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if to is not None:
        extra["destinationList"] = [{"type": "location", "destination": to}]
    return event(epcList=epcs, bizStep="shipping", disposition="in_transit",
                 bizLocation={"id": at}, **extra, **fields)


def receive(epcs: list[str], *, at: str = WAREHOUSE, **fields: Any) -> dict[str, Any]:
    return event(epcList=epcs, bizStep="receiving", disposition="in_progress",
                 bizLocation={"id": at}, **fields)


def aggregate(parent: str, children: list[str], action: str = "ADD") -> dict[str, Any]:
    ev = event("AggregationEvent", action=action, parentID=parent, bizStep="packing",
               bizLocation={"id": FACTORY})
    if children:
        ev["childEPCs"] = children
    return ev


@pytest.fixture
def ledger() -> Ledger:
    led = Ledger()
    led.ok("shipments.register", {"identifiers": [FACTORY]}, "supplier-a")
    led.ok("shipments.register", {"identifiers": [HUB]}, "logistics-a")
    led.ok("shipments.register", {"identifiers": [WAREHOUSE_DL]}, "warehouse-a")
    return led


# -- registration ------------------------------------------------------------------------

def test_registration_ties_identifiers_in_any_spelling_to_the_author(ledger: Ledger) -> None:
    held = ledger.get(sh.registration_key(WAREHOUSE_DL))
    assert held["org"] == "warehouse-a" and held["kind"] == "location"
    # The same GLN as an sgln URN is the same identifier.
    message = ledger.refused("identifier_taken", "shipments.register",
                             {"identifiers": [WAREHOUSE]}, "logistics-a")
    assert message.startswith("payload.identifiers[0]:") and "warehouse-a" in message
    ledger.ok("shipments.register", {"identifiers": ["urn:epc:id:pgln:4012345.00009"]},
              "buyer-a")
    assert ledger.get(sh.registration_key("https://id.gs1.org/417/4012345000092"))["kind"] \
        == "party"


@pytest.mark.parametrize("identifiers, code, field", [
    ([CASE1], "not_a_location", "payload.identifiers[0]"),
    (["not a uri"], "bad_identifier", "payload.identifiers[0]"),
    (["urn:epc:id:sgln:4012345.00005.0", "https://id.gs1.org/414/4012345000054"],
     "duplicate_identifier", "payload.identifiers[1]"),
])
def test_bad_registrations_are_refused_naming_the_entry(ledger: Ledger, identifiers: list[str],
                                                        code: str, field: str) -> None:
    message = ledger.refused(code, "shipments.register", {"identifiers": identifiers},
                             "buyer-a")
    assert message.startswith(field + ":")


def test_only_the_platform_registers_for_another_organisation(ledger: Ledger) -> None:
    loc = "urn:epc:id:sgln:4012345.00006.0"
    message = ledger.refused("not_platform", "shipments.register",
                             {"identifiers": [loc], "org": "buyer-a"}, "supplier-a")
    assert message.startswith("payload.org:")
    parties = ledger.ok("shipments.register", {"identifiers": [loc], "org": "buyer-a"},
                        "platform")
    assert parties == {"platform", "buyer-a", "*"}  # public: every member may read it
    assert ledger.get(sh.registration_key("https://id.gs1.org/414/4012345000061"))["org"] \
        == "buyer-a"


def test_roles_outside_the_flow_may_not_capture(ledger: Ledger) -> None:
    message = ledger.refused("role_not_allowed", "shipments.capture",
                             {"epcis": doc(ship([CASE1]))}, "bank-a")
    assert "bank-a" in message


# -- capture, event ids, parties ---------------------------------------------------------

def test_capture_stores_events_and_names_the_owners_of_the_places_as_parties(
        ledger: Ledger) -> None:
    parties = ledger.capture(ship([CASE1, CASE2], at=HUB, to=WAREHOUSE))
    assert parties == {"logistics-a", "warehouse-a"}
    rec = ledger.epc(CASE1_DL)
    assert rec["in_transit"]["to"] == WAREHOUSE_DL
    assert rec["location"] == "https://id.gs1.org/414/4012345000023"
    assert rec["count"] == 1 and rec["custodian"] == "logistics-a"
    stored = ledger.get(sh.event_key(rec["last_event"]))
    assert stored["parties"] == ["logistics-a", "warehouse-a"]
    assert stored["biz_step"] == "shipping" and stored["index"] == 0


def test_an_event_without_event_id_is_named_by_its_cbv_hash(ledger: Ledger) -> None:
    ev = ship([CASE1])
    ledger.capture(ev)
    expected = event_hash(ev, {})
    assert ledger.get(sh.event_key(expected))["biz_step"] == "shipping"
    # The identical event again is a duplicate, even in another spelling of the EPC.
    again = dict(ev, epcList=[CASE1_DL])
    message = ledger.refuse_capture("duplicate_event_id", again)
    assert message.startswith("payload.epcis.epcisBody.eventList[0]:")


def test_duplicate_event_ids_are_refused_on_the_ledger_and_in_one_batch(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], eventID="urn:uuid:11111111-1111-4111-8111-111111111111"))
    message = ledger.refuse_capture(
        "duplicate_event_id", ship([CASE2], eventID="urn:uuid:11111111-1111-4111-8111-111111111111"))
    assert message.startswith("payload.epcis.epcisBody.eventList[0].eventID:")
    same = "urn:uuid:22222222-2222-4222-8222-222222222222"
    message = ledger.refuse_capture("duplicate_event_id", ship([CASE1], eventID=same),
                                    receive([CASE1], eventID=same))
    assert message.startswith("payload.epcis.epcisBody.eventList[1].eventID:")


def test_a_single_event_is_captured_with_its_own_context(ledger: Ledger) -> None:
    single = dict(ship([CASE1]), **{"@context": [CONTEXT]})
    ledger.ok("shipments.capture", {"epcis": single}, "logistics-a")
    assert ledger.epc(CASE1_DL)["count"] == 1
    bad = dict(single, bizStep="teleporting", eventTime="2026-03-02T09:30:00Z")
    message = ledger.refused("malformed", "shipments.capture", {"epcis": bad}, "logistics-a")
    assert message.startswith("payload.epcis.bizStep:")


def test_an_event_naming_an_order_makes_its_parties_parties(ledger: Ledger) -> None:
    ledger.ok("trade.order", {"order_id": "PO-9", "buyer": "buyer-a", "seller": "supplier-a",
                              "currency": "EUR", "total": 100_00}, "buyer-a", "supplier-a")
    btx = [{"type": "po", "bizTransaction": sh.order_biz_transaction("PO-9")}]
    parties = ledger.capture(ship([CASE1], at=HUB, to=None, bizTransactionList=btx))
    assert parties == {"logistics-a", "buyer-a", "supplier-a"}
    # An unknown order adds nobody and is no error (its existence does not leak).
    btx = [{"type": "po", "bizTransaction": sh.order_biz_transaction("PO-unknown")}]
    assert ledger.capture(ship([CASE2], at=HUB, to=None, bizTransactionList=btx)) \
        == {"logistics-a"}
    assert ledger.get(tr.order_key("PO-9"))["buyer"] == "buyer-a"


# -- custody -----------------------------------------------------------------------------

def test_goods_are_received_where_they_were_shipped(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=WAREHOUSE))
    parties = ledger.capture(receive([CASE1], at=WAREHOUSE_DL), by="warehouse-a")
    rec = ledger.epc(CASE1_DL)
    assert rec["in_transit"] is None and rec["custodian"] == "warehouse-a"
    assert rec["location"] == WAREHOUSE_DL and rec["count"] == 2
    assert parties == {"warehouse-a"}


def test_receiving_elsewhere_is_refused_naming_the_location_field(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=WAREHOUSE))
    message = ledger.refuse_capture("wrong_receiving_location", receive([CASE1], at=FACTORY),
                                    by="warehouse-a")
    assert message.startswith("payload.epcis.epcisBody.eventList[0].bizLocation.id:")
    assert WAREHOUSE_DL in message and FACTORY_DL in message
    # Without a bizLocation the readPoint is the place of receipt.
    ev = receive([CASE1])
    del ev["bizLocation"]
    ev["readPoint"] = {"id": HUB}
    message = ledger.refuse_capture("wrong_receiving_location", ev, by="warehouse-a")
    assert message.startswith("payload.epcis.epcisBody.eventList[0].readPoint.id:")


def test_a_sub_location_of_the_destination_may_receive(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=WAREHOUSE))
    ledger.capture(receive([CASE1], at=WAREHOUSE_DOCK), by="warehouse-a")
    assert ledger.epc(CASE1_DL)["in_transit"] is None


def test_the_contents_of_a_shipped_pallet_are_received_only_at_its_destination(
        ledger: Ledger) -> None:
    ledger.capture(aggregate(PALLET, [CASE1, CASE2]), by="supplier-a")
    ledger.capture(ship([PALLET], to=WAREHOUSE))
    ledger.refuse_capture("wrong_receiving_location", receive([CASE2], at=HUB),
                          by="logistics-a")
    ledger.capture(receive([PALLET]), by="warehouse-a")


def test_a_receiving_event_later_in_the_same_batch_sees_the_shipment(ledger: Ledger) -> None:
    message = ledger.refuse_capture("wrong_receiving_location", ship([CASE1], to=WAREHOUSE),
                                    receive([CASE1], at=HUB))
    assert message.startswith("payload.epcis.epcisBody.eventList[1].bizLocation.id:")
    assert ledger.epc(CASE1_DL) is None  # nothing of the refused batch was written


def test_goods_shipped_without_a_destination_may_be_received_anywhere(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=None))
    ledger.capture(receive([CASE1], at=FACTORY), by="supplier-a")
    assert ledger.epc(CASE1_DL)["location"] == FACTORY_DL


def test_customs_steps_are_recorded(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=WAREHOUSE))
    ledger.capture(event(epcList=[CASE1], bizStep="holding", disposition="sellable_not_accessible",
                         bizLocation={"id": HUB}), by="inspector-a")
    held = ledger.epc(CASE1_DL)["customs"]
    assert held["step"] == "holding" and held["org"] == "inspector-a"
    ledger.capture(event(epcList=[CASE1], bizStep="accepting", disposition="conformant",
                         bizLocation={"id": HUB}), by="inspector-a")
    rec = ledger.epc(CASE1_DL)
    assert rec["customs"]["step"] == "accepting" and rec["disposition"] == "conformant"
    assert ledger.get(sh.event_key(rec["customs"]["event_id"]))["biz_step"] == "accepting"


# -- aggregation -------------------------------------------------------------------------

def test_aggregation_and_disaggregation_keep_parent_and_children_consistent(
        ledger: Ledger) -> None:
    ledger.capture(aggregate(PALLET, [CASE1, CASE2]), by="supplier-a")
    pallet = ledger.epc(PALLET_DL)
    assert pallet["children"] == [CASE1_DL, "https://id.gs1.org/01/04012345111118/21/2"]
    assert ledger.epc(CASE1_DL)["parent"] == pallet["epc"]
    ledger.capture(aggregate(PALLET, [CASE1], action="DELETE"), by="supplier-a")
    assert ledger.epc(pallet["epc"])["children"] == ["https://id.gs1.org/01/04012345111118/21/2"]
    assert ledger.epc(CASE1_DL)["parent"] is None
    ledger.capture(aggregate(PALLET, [], action="DELETE"), by="supplier-a")
    assert ledger.epc(pallet["epc"])["children"] == []
    assert ledger.epc("https://id.gs1.org/01/04012345111118/21/2")["parent"] is None


def test_a_child_in_one_parent_cannot_be_added_to_another(ledger: Ledger) -> None:
    ledger.capture(aggregate(PALLET, [CASE1]), by="supplier-a")
    message = ledger.refuse_capture("child_in_other_parent", aggregate(PALLET2, [CASE2, CASE1]),
                                    by="supplier-a")
    assert message.startswith("payload.epcis.epcisBody.eventList[0].childEPCs[1]:")
    observed = aggregate(PALLET2, [CASE1], action="OBSERVE")
    ledger.refuse_capture("child_in_other_parent", observed, by="supplier-a")
    # Adding again to the same parent is consistent.
    ledger.capture(aggregate(PALLET, [CASE1]), by="supplier-a")


def test_removing_a_child_that_is_not_in_the_parent_is_refused(ledger: Ledger) -> None:
    ledger.capture(aggregate(PALLET, [CASE1]), by="supplier-a")
    message = ledger.refuse_capture("not_in_parent", aggregate(PALLET2, [CASE1], action="DELETE"),
                                    by="supplier-a")
    assert message.startswith("payload.epcis.epcisBody.eventList[0].childEPCs[0]:")
    assert PALLET_DL in message


def test_aggregation_cycles_are_refused(ledger: Ledger) -> None:
    ledger.capture(aggregate(PALLET, [PALLET2]), by="supplier-a")
    ledger.refuse_capture("aggregation_cycle", aggregate(PALLET2, [PALLET]), by="supplier-a")
    ledger.refuse_capture("aggregation_cycle", aggregate(PALLET, [PALLET]), by="supplier-a")


def test_association_is_tracked_apart_from_aggregation(ledger: Ledger) -> None:
    sensor = "urn:epc:id:giai:4012345.SENSOR1"
    ledger.capture(aggregate(PALLET, [CASE1]), by="supplier-a")
    assoc = event("AssociationEvent", action="ADD", parentID=CASE1, childEPCs=[sensor],
                  bizStep="assembling")
    ledger.capture(assoc, by="supplier-a")
    rec = ledger.epc(CASE1_DL)
    assert rec["parent"] is not None and rec["associated"] == ["https://id.gs1.org/8004/4012345SENSOR1"]


def test_history_index_lists_every_event_of_an_epc_in_order(ledger: Ledger) -> None:
    ledger.capture(ship([CASE1], to=WAREHOUSE))
    ledger.capture(receive([CASE1_DL]), by="warehouse-a")
    first = ledger.get(sh.history_key("epc", CASE1_DL, 0))
    second = ledger.get(sh.history_key("epc", CASE1_DL, 1))
    assert ledger.get(sh.event_key(first))["biz_step"] == "shipping"
    assert ledger.get(sh.event_key(second))["biz_step"] == "receiving"
    assert ledger.get(sh.counter_key("loc", WAREHOUSE_DL))["count"] == 1


def test_an_associated_child_moves_to_its_new_parent(ledger: Ledger) -> None:
    sensor = "urn:epc:id:giai:4012345.SENSOR2"
    sensor_dl = "https://id.gs1.org/8004/4012345SENSOR2"
    ledger.capture(event("AssociationEvent", action="ADD", parentID=CASE1, childEPCs=[sensor]),
                   by="supplier-a")
    ledger.capture(event("AssociationEvent", action="ADD", parentID=CASE2, childEPCs=[sensor]),
                   by="supplier-a")
    assert ledger.epc(CASE1_DL)["associated"] == []
    assert ledger.epc("https://id.gs1.org/01/04012345111118/21/2")["associated"] == [sensor_dl]
    assert ledger.epc(sensor_dl)["associated_with"] == "https://id.gs1.org/01/04012345111118/21/2"


def test_an_event_after_the_ledger_time_is_refused(ledger: Ledger) -> None:
    late = ship([CASE1], eventTime=(T0 + timedelta(days=2)).isoformat())
    message = ledger.refuse_capture("event_in_future", late)
    assert message.startswith("payload.epcis.epcisBody.eventList[0].eventTime:")


def test_every_rejection_code_is_in_the_spec() -> None:
    import re
    from pathlib import Path

    source = Path(sh.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'Rejected\(\s*"([a-z_]+)"', source))
    spec = (Path(__file__).resolve().parents[1] / "specs" / "shipments.md").read_text(
        encoding="utf-8")
    assert codes >= {"wrong_receiving_location", "duplicate_event_id", "child_in_other_parent"}
    assert sorted(c for c in codes if f"`{c}`" not in spec) == []


def test_the_timeline_follows_the_goods_but_not_into_another_order(ledger: Ledger) -> None:
    from ledger import traceability

    for order_id in ("PO-1", "PO-2"):
        ledger.ok("trade.order", {"order_id": order_id, "buyer": "buyer-a",
                                  "seller": "supplier-a", "currency": "EUR", "total": 100},
                  "buyer-a", "supplier-a")
    po1 = [{"type": "po", "bizTransaction": sh.order_biz_transaction("PO-1")}]
    po2 = [{"type": "po", "bizTransaction": sh.order_biz_transaction("PO-2")}]
    ledger.capture(ship([CASE1], to=WAREHOUSE, bizTransactionList=po1))
    # The warehouse's scans name no order: they follow the goods into PO-1's timeline.
    ledger.capture(receive([CASE1]), by="warehouse-a")
    ledger.capture(ship([CASE1], at=WAREHOUSE, to=HUB, bizTransactionList=po2),
                   by="warehouse-a")
    steps = [(e["kind"], e.get("biz_step")) for e in
             traceability.order_timeline(ledger, "PO-1", "buyer-a")["entries"]]
    assert steps == [("order", None), ("shipment", "shipping"), ("warehouse", "receiving")]
    # The receipt named no order but inherited PO-1 from the goods: its parties see it.
    receipt = ledger.get(sh.event_key(ledger.get(sh.history_key("epc", CASE1_DL, 1))))
    assert receipt["biz_step"] == "receiving" and receipt["orders"] == ["PO-1"]
    assert set(receipt["parties"]) == {"warehouse-a", "buyer-a", "supplier-a"}
    assert ledger.epc(CASE1_DL)["orders"] == ["PO-2"]  # the last shipment named PO-2
    seller = traceability.order_timeline(ledger, "PO-1", "supplier-a")
    assert [e["kind"] for e in seller["entries"]] == ["order", "shipment", "warehouse"]
    # The warehouse is no party to the order itself.
    assert traceability.order_timeline(ledger, "PO-1", "warehouse-a") is None
    po2_steps = [e.get("biz_step") for e in
                 traceability.order_timeline(ledger, "PO-2", "buyer-a")["entries"]]
    assert po2_steps == [None, "shipping"]
