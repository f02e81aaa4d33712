"""EPCIS 2.0 validation and normalisation (ledger/epcis, specs/epcis.md).

Real-world input: the openepcis capture documents in shared/testdata/epcis.
Event hash vectors: the worked examples and expected CBV 2.0 hashes published
with the GS1 reference implementation of the CBV 2.0 event hash
(github.com/RalphTro/epcis-event-hash-generator, README and
tests/examples/expected/CBV2.0).
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.epcis import (
    BIZ_STEPS,
    DISPOSITIONS,
    Event,
    event_hash,
    gs1_check_digit,
    normalise_biz_step,
    normalise_disposition,
    normalise_epc,
    prehash_string,
    validate_document,
)
from ledger.errors import MalformedRecord

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "epcis"
VALID = sorted((TESTDATA / "valid").glob("*.json"))
INVALID = sorted((TESTDATA / "invalid").glob("*.json"))
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _doc(*events: dict[str, Any], context: list[Any] | None = None) -> dict[str, Any]:
    return {"@context": context or [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-01-05T09:00:00Z", "epcisBody": {"eventList": list(events)}}


def _event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2026-01-05T10:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def _reject(doc: Any) -> MalformedRecord:
    with pytest.raises(MalformedRecord) as info:
        validate_document(doc)
    return info.value


# -- the shared real-world documents ---------------------------------------------------

def test_testdata_is_present() -> None:
    assert len(VALID) >= 19 and len(INVALID) >= 8, TESTDATA


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_valid_document_is_accepted(path: Path) -> None:
    doc = _load(path)
    events = validate_document(doc)
    raw_events = doc["epcisBody"]["eventList"]
    assert len(events) == len(raw_events)
    for event, raw in zip(events, raw_events, strict=True):
        assert isinstance(event, Event)
        assert event.raw is raw
        assert event.event_type == raw["type"]
        assert event.event_time.tzinfo is UTC
        if "eventID" in raw:
            assert event.event_id == raw["eventID"] and not event.event_id_is_hash
        else:
            assert event.event_id.startswith("ni:///sha-256;") and event.event_id_is_hash
            assert event.event_id.endswith("?ver=CBV2.0")
    assert json.loads(path.read_text(encoding="utf-8")) == doc  # input left unchanged


# Each invalid document and the error it must give: the first offending field.
INVALID_EXPECTED = {
    # Event 0 already lacks "action"; event 1 lacks eventTimeZoneOffset and action.
    "Combination_of_events_with_missing_mandatory_fields.json":
        ("epcisBody.eventList[0].action", "required"),
    "Combination_of_non_standard_bizStep_and_disposition.json":
        ("epcisBody.eventList[0].bizStep", "cbv_bizstep"),
    "ObjectEvent_with_ilmd_field_without_namespace.json":
        ("epcisBody.eventList[0].ilmd.materialType", "not_namespaced"),
    "ObjectEvent_with_invalid_certificationInfo.json":
        ("epcisBody.eventList[0].certificationInfo[1].gs1:CertificationDetails"
         ".gs1:certificationAuditDate", "date"),
    "ObjectEvent_with_non_standard_bizStep.json":
        ("epcisBody.eventList[0].bizStep", "cbv_bizstep"),
    "ObjectEvent_with_non_standard_disposition.json":
        ("epcisBody.eventList[0].disposition", "cbv_disposition"),
    "ObjectEvent_with_unknown_field_in_quantityList.json":
        ("epcisBody.eventList[0].quantityList[0].weight", "unknown_field"),
    "ObjectEvent_without_identifier_list.json":
        ("epcisBody.eventList[0].epcList", "required"),
}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_document_is_rejected_naming_the_field(path: Path) -> None:
    assert path.name in INVALID_EXPECTED, "a new invalid file: add its expected error"
    error = _reject(_load(path))
    assert (error.field, error.rule) == INVALID_EXPECTED[path.name]
    assert error.to_problem()["field"] == error.field
    assert error.field in str(error)


def test_second_event_of_the_combination_names_its_first_missing_field() -> None:
    doc = _load(TESTDATA / "invalid" / "Combination_of_events_with_missing_mandatory_fields.json")
    doc["epcisBody"]["eventList"][0]["action"] = "OBSERVE"
    error = _reject(doc)
    assert (error.field, error.rule) == ("epcisBody.eventList[1].eventTimeZoneOffset",
                                        "required")
    doc["epcisBody"]["eventList"][1]["eventTimeZoneOffset"] = "-06:00"
    assert _reject(doc).field == "epcisBody.eventList[1].action"


def test_the_non_standard_disposition_of_the_second_event_is_found_too() -> None:
    doc = _load(TESTDATA / "invalid" / "Combination_of_non_standard_bizStep_and_disposition.json")
    del doc["epcisBody"]["eventList"][0]["bizStep"]
    error = _reject(doc)
    assert (error.field, error.rule) == ("epcisBody.eventList[1].disposition", "cbv_disposition")


# -- CBV spellings -----------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["shipping", "urn:epcglobal:cbv:bizstep:shipping",
                                      "https://ref.gs1.org/cbv/BizStep-shipping",
                                      "cbv:BizStep-shipping"])
def test_every_spelling_of_a_biz_step_normalises_to_the_bare_name(spelling: str) -> None:
    [event] = validate_document(_doc(_event(bizStep=spelling)))
    assert event.biz_step == "shipping"
    assert normalise_biz_step(spelling) == "shipping"


@pytest.mark.parametrize("spelling", ["in_transit", "urn:epcglobal:cbv:disp:in_transit",
                                      "https://ref.gs1.org/cbv/Disp-in_transit"])
def test_every_spelling_of_a_disposition_normalises_to_the_bare_name(spelling: str) -> None:
    [event] = validate_document(_doc(_event(disposition=spelling)))
    assert event.disposition == "in_transit"
    assert normalise_disposition(spelling) == "in_transit"


def test_the_spellings_give_one_event_hash() -> None:
    hashes = {validate_document(_doc(_event(bizStep=s, disposition=d)))[0].event_id
              for s, d in [("shipping", "in_transit"),
                           ("urn:epcglobal:cbv:bizstep:shipping",
                            "urn:epcglobal:cbv:disp:in_transit"),
                           ("https://ref.gs1.org/cbv/BizStep-shipping",
                            "https://ref.gs1.org/cbv/Disp-in_transit")]}
    assert len(hashes) == 1


def test_custom_vocabulary_uris_are_kept() -> None:
    [event] = validate_document(_doc(_event(bizStep="https://example.com/bizStep/inspecting",
                                            disposition="urn:example:disp:quarantined")))
    assert event.biz_step == "https://example.com/bizStep/inspecting"
    assert event.disposition == "urn:example:disp:quarantined"


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("bizStep", "transforming", "cbv_bizstep"),
    ("bizStep", "Shipping", "cbv_bizstep"),
    ("bizStep", "urn:epcglobal:cbv:bizstep:transforming", "cbv_bizstep"),
    ("bizStep", "https://ref.gs1.org/cbv/BizStep-transforming", "cbv_bizstep"),
    ("bizStep", 7, "cbv_bizstep"),
    ("disposition", "in_transport", "cbv_disposition"),
    ("disposition", "urn:epcglobal:cbv:disp:in_transport", "cbv_disposition"),
])
def test_non_standard_bare_or_cbv_namespace_values_are_refused(field: str, value: object,
                                                                rule: str) -> None:
    error = _reject(_doc(_event(**{field: value})))
    assert (error.field, error.rule) == (f"epcisBody.eventList[0].{field}", rule)


def test_vocabularies_are_the_full_cbv_2_lists() -> None:
    assert len(BIZ_STEPS) == 41 and {"sensor_reporting", "sampling", "void_shipping"} <= BIZ_STEPS
    assert len(DISPOSITIONS) == 33 and {"needs_replacement", "unavailable"} <= DISPOSITIONS


# -- mandatory fields and formats ------------------------------------------------------

def test_missing_event_time_is_refused() -> None:
    error = _reject(_doc(_event(eventTime=None)))
    assert (error.field, error.rule) == ("epcisBody.eventList[0].eventTime", "required")


@pytest.mark.parametrize("value", ["2026-01-05", "2026-01-05T10:00:00", "2026-02-30T10:00:00Z",
                                   "2026-01-05T25:00:00Z", "yesterday", 1767600000, None])
def test_bad_event_time_is_refused(value: object) -> None:
    event = _event()
    event["eventTime"] = value
    error = _reject(_doc(event))
    assert (error.field, error.rule) == ("epcisBody.eventList[0].eventTime", "date_time")


@pytest.mark.parametrize("value", ["+1:00", "01:00", "+15:00", "+14:30", "-13:60", "Z", "+0100",
                                   100, None])
def test_bad_event_time_zone_offset_is_refused(value: object) -> None:
    event = _event()
    event["eventTimeZoneOffset"] = value
    error = _reject(_doc(event))
    assert (error.field, error.rule) == ("epcisBody.eventList[0].eventTimeZoneOffset",
                                        "time_zone_offset")


def test_missing_event_time_zone_offset_is_refused() -> None:
    error = _reject(_doc(_event(eventTimeZoneOffset=None)))
    assert (error.field, error.rule) == ("epcisBody.eventList[0].eventTimeZoneOffset",
                                        "required")


def test_event_time_is_normalised_to_utc() -> None:
    [event] = validate_document(_doc(_event(eventTime="2005-04-03T20:33:31.116-06:00")))
    assert event.event_time == datetime(2005, 4, 4, 2, 33, 31, 116000, tzinfo=UTC)
    assert event.event_time_zone_offset == "+01:00"


@pytest.mark.parametrize(("fields", "path", "rule"), [
    ({"action": "MOVE"}, "action", "action"),
    ({"action": None}, "action", "required"),
    ({"epcList": None}, "epcList", "required"),
    ({"epcList": "urn:epc:id:sgtin:0614141.107346.2017"}, "epcList", "array"),
    ({"epcList": ["not a uri"]}, "epcList[0]", "uri"),
    ({"epcList": ["urn:epc:id:sgtin:0614141.10734.2017"]}, "epcList[0]", "epc_uri"),
    ({"epcList": ["urn:epc:id:sscc:0614141.123"]}, "epcList[0]", "epc_uri"),
    ({"epcList": ["urn:x:1", "urn:x:1"]}, "epcList[1]", "duplicate"),
    ({"childEPCs": ["urn:x:1"]}, "childEPCs", "unknown_field"),
    ({"myField": 1}, "myField", "not_namespaced"),
    ({"nope:myField": 1}, "nope:myField", "undeclared_prefix"),
    ({"readPoint": {"id": "urn:x:1", "floor": 2}}, "readPoint.floor", "not_namespaced"),
    ({"readPoint": {}}, "readPoint.id", "required"),
    ({"readPoint": "urn:x:1"}, "readPoint", "object"),
    ({"ilmd": {"cbvmda:lotNumber": "A1"}}, "ilmd", "ilmd_action"),
    ({"quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877",
                        "quantity": 2, "uom": "kg"}]}, "quantityList[0].uom", "uom"),
    ({"quantityList": [{"quantity": 2}]}, "quantityList[0].epcClass", "required"),
    ({"quantityList": [{"epcClass": "urn:x:1", "quantity": True}]},
     "quantityList[0].quantity", "number"),
    ({"bizTransactionList": [{"type": "order", "bizTransaction": "urn:x:po:1"}]},
     "bizTransactionList[0].type", "cbv_btt"),
    ({"bizTransactionList": [{"bizTransaction": "urn:x:po:1", "date": "x"}]},
     "bizTransactionList[0].date", "unknown_field"),
    ({"sourceList": [{"type": "owning_party"}]}, "sourceList[0].source", "required"),
    ({"destinationList": [{"type": "buyer", "destination": "urn:x:1"}]},
     "destinationList[0].type", "cbv_sdt"),
    ({"persistentDisposition": {"set": []}}, "persistentDisposition.set", "min_items"),
    ({"persistentDisposition": {"set": ["broken"]}}, "persistentDisposition.set[0]",
     "cbv_disposition"),
    ({"errorDeclaration": {"reason": "incorrect_data"}}, "errorDeclaration.declarationTime",
     "required"),
    ({"errorDeclaration": {"declarationTime": "2026-01-05T10:00:00Z", "reason": "oops"}},
     "errorDeclaration.reason", "cbv_error_reason"),
    ({"certificationInfo": "certified"}, "certificationInfo", "uri"),
    ({"sensorElementList": [{"sensorReport": [{"type": "Heat"}]}]},
     "sensorElementList[0].sensorReport[0].type", "measurement_type"),
    ({"sensorElementList": [{"sensorReport": []}]}, "sensorElementList[0].sensorReport",
     "min_items"),
    ({"sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": "26"}]}]},
     "sensorElementList[0].sensorReport[0].value", "number"),
    ({"recordTime": "now"}, "recordTime", "date_time"),
    ({"eventID": "id 1"}, "eventID", "uri"),
    ({"example:deep": json.loads("[" * 40 + "]" * 40)}, "example:deep" + "[0]" * 33,
     "too_deep"),
])
def test_rules_name_the_offending_field(fields: dict[str, Any], path: str, rule: str) -> None:
    event = _event()
    for key, value in fields.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    error = _reject(_doc(event, context=[CONTEXT, {"example": "https://example.com/ns/"}]))
    assert (error.field, error.rule) == (f"epcisBody.eventList[0].{path}", rule)


def test_fields_that_are_not_plain_names_are_quoted_in_the_path() -> None:
    event = _event(readPoint={"id": "urn:x:1", "a.b": 1})
    error = _reject(_doc(event))
    assert error.field == 'epcisBody.eventList[0].readPoint["a.b"]'


@pytest.mark.parametrize(("event", "path"), [
    ({"type": "AggregationEvent", "action": "ADD", "childEPCs": ["urn:x:1"]}, "parentID"),
    ({"type": "AggregationEvent", "action": "ADD", "parentID": "urn:x:p"}, "childEPCs"),
    ({"type": "AssociationEvent", "action": "OBSERVE", "childEPCs": ["urn:x:1"]}, "parentID"),
    ({"type": "TransactionEvent", "action": "ADD", "epcList": ["urn:x:1"]},
     "bizTransactionList"),
    ({"type": "TransactionEvent", "action": "ADD", "epcList": ["urn:x:1"],
      "bizTransactionList": []}, "bizTransactionList"),
    ({"type": "TransformationEvent", "inputEPCList": ["urn:x:1"]}, "outputEPCList"),
    ({"type": "TransformationEvent", "outputEPCList": ["urn:x:1"]}, "inputEPCList"),
    ({"type": "TransformationEvent", "action": "ADD", "inputEPCList": ["urn:x:1"],
      "outputEPCList": ["urn:x:2"]}, "action"),
])
def test_per_type_requirements(event: dict[str, Any], path: str) -> None:
    event = {"eventTime": "2026-01-05T10:00:00Z", "eventTimeZoneOffset": "+00:00", **event}
    error = _reject(_doc(event))
    assert error.field == f"epcisBody.eventList[0].{path}"
    assert error.rule in ("required", "min_items", "unknown_field")


def test_each_event_type_is_accepted_and_normalised() -> None:
    base = {"eventTime": "2026-01-05T10:00:00Z", "eventTimeZoneOffset": "+00:00"}
    sscc = "urn:epc:id:sscc:0614141.1234567890"
    events = validate_document(_doc(
        {**base, "type": "AggregationEvent", "action": "ADD", "parentID": sscc,
         "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"], "bizStep": "packing"},
        {**base, "type": "AggregationEvent", "action": "DELETE", "parentID": sscc},
        {**base, "type": "TransactionEvent", "action": "ADD", "epcList": [],
         "bizTransactionList": [{"type": "urn:epcglobal:cbv:btt:po",
                                 "bizTransaction": "urn:epc:id:gdti:0614141.00001.1618034"}]},
        {**base, "type": "TransformationEvent", "inputEPCList": ["urn:x:in"],
         "transformationID": "urn:x:t1"},
        {**base, "type": "AssociationEvent", "action": "ADD",
         "parentID": "urn:epc:id:grai:4012345.55555.987",
         "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877",
                                "quantity": 2.5, "uom": "KGM"}]},
        {**base, "type": "ObjectEvent", "action": "OBSERVE",
         "readPoint": {"id": "urn:epc:id:sgln:4012345.00005.0"},
         "sensorElementList": [{"sensorReport": [{"type": "Temperature", "value": 4}]}]},
        {**base, "type": "ObjectEvent", "action": "ADD", "epcList": ["urn:x:1"],
         "ilmd": {"cbvmda:lotNumber": "L1"},
         "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00225"}],
         "destinationList": [{"type": "location",
                              "destination": "urn:epc:id:sgln:0614141.00777.0"}]},
    ))
    packing, unpacked, transaction, transformation, association, sensor, obj = events
    parent = "https://id.gs1.org/00/106141412345678908"
    assert packing.parent_id == parent and packing.biz_step == "packing"
    assert packing.child_epcs == ("https://id.gs1.org/01/10614141073464/21/2017",)
    assert packing.epcs == (parent, "https://id.gs1.org/01/10614141073464/21/2017")
    assert unpacked.epcs == (parent,) and unpacked.action == "DELETE"
    [btx] = transaction.biz_transactions
    assert (btx.type, btx.value) == ("po", "https://id.gs1.org/253/06141410000121618034")
    assert transformation.action is None and transformation.input_epcs == ("urn:x:in",)
    assert transformation.transformation_id == "urn:x:t1"
    [quantity] = association.quantities
    assert (quantity.list_name, quantity.epc_class, quantity.quantity, quantity.uom) == (
        "childQuantityList", "https://id.gs1.org/01/04012345123456/10/998877", 2.5, "KGM")
    assert association.epc_classes == ("https://id.gs1.org/01/04012345123456/10/998877",)
    assert sensor.read_point == "https://id.gs1.org/414/4012345000054"
    assert [(s.type, s.value) for s in obj.source_list] == [
        ("owning_party", "https://id.gs1.org/417/4012345002256")]
    assert [(d.type, d.value) for d in obj.destination_list] == [
        ("location", "https://id.gs1.org/414/0614141007776")]
    assert len({e.event_id for e in events}) == len(events)
    assert all(hash(e) for e in events)  # frozen and hashable


def test_a_single_event_and_a_query_document_are_accepted() -> None:
    event = {"@context": [CONTEXT], **_event()}
    [single] = validate_document(event)
    query = {"@context": [CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
             "creationDate": "2026-01-05T09:00:00Z",
             "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                            "resultsBody": {"eventList": [_event()]}}}}
    [queried] = validate_document(query)
    assert single.event_id == queried.event_id
    error = _reject(_event())
    assert (error.field, error.rule) == ("@context", "required")


@pytest.mark.parametrize(("doc", "field", "rule"), [
    ([], "$", "object"),
    ({}, "type", "required"),
    ({"type": "EPCISMasterDataDocument"}, "type", "document_type"),
    ({"type": "EPCISDocument", "@context": [CONTEXT], "schemaVersion": "1.2",
      "creationDate": "2026-01-05T09:00:00Z", "epcisBody": {"eventList": []}},
     "schemaVersion", "schema_version"),
    ({"type": "EPCISDocument", "@context": [CONTEXT], "schemaVersion": "2.0",
      "creationDate": "2026-01-05T09:00:00Z", "epcisBody": {}}, "epcisBody.eventList",
     "required"),
    ({"type": "EPCISDocument", "@context": 5, "schemaVersion": "2.0",
      "creationDate": "2026-01-05T09:00:00Z", "epcisBody": {"eventList": []}}, "@context",
     "context"),
    ({"type": "EPCISDocument", "@context": [CONTEXT], "schemaVersion": "2.0",
      "epcisBody": {"eventList": []}}, "creationDate", "required"),
])
def test_document_level_errors(doc: Any, field: str, rule: str) -> None:
    error = _reject(doc)
    assert (error.field, error.rule) == (field, rule)


def test_prefixes_declared_on_the_event_are_in_scope_for_that_event_only() -> None:
    first = _event(**{"@context": [{"ext": "https://example.com/ext/"}], "ext:note": "a"})
    second = _event(**{"ext:note": "b"})
    validate_document(_doc(first))
    error = _reject(_doc(first, second))
    assert (error.field, error.rule) == ('epcisBody.eventList[1].ext:note', "undeclared_prefix")


def test_full_uri_extension_fields_need_no_prefix() -> None:
    validate_document(_doc(_event(**{"https://example.com/ns/grade": "A"})))


# -- identifiers -----------------------------------------------------------------------

@pytest.mark.parametrize(("urn", "digital_link"), [
    ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
    ("urn:epc:id:sgtin:4012345.011111.9876", "https://id.gs1.org/01/04012345111118/21/9876"),
    ("urn:epc:id:sgtin:0614141.107346.A%2FB", "https://id.gs1.org/01/10614141073464/21/A%2FB"),
    ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
    ("urn:epc:id:sscc:4012345.0000000333", "https://id.gs1.org/00/040123450000003338"),
    ("urn:epc:id:sgln:0614141.00777.0", "https://id.gs1.org/414/0614141007776"),
    ("urn:epc:id:sgln:4012345.00011.987", "https://id.gs1.org/414/4012345000115/254/987"),
    ("urn:epc:class:lgtin:4012345.012345.998877",
     "https://id.gs1.org/01/04012345123456/10/998877"),
    ("urn:epc:id:grai:4012345.55555.987", "https://id.gs1.org/8003/04012345555554987"),
    ("urn:epc:id:giai:4000001.111", "https://id.gs1.org/8004/4000001111"),
    ("urn:epc:id:pgln:4012345.00225", "https://id.gs1.org/417/4012345002256"),
])
def test_epc_urns_and_digital_links_share_one_canonical_key(urn: str, digital_link: str) -> None:
    assert normalise_epc(urn) == digital_link
    assert normalise_epc(digital_link) == digital_link


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("https://id.gs1.de/01/04012345999990/21/XYZ-1234",
     "https://id.gs1.org/01/04012345999990/21/XYZ-1234"),
    ("http://example.com/products/01/4012345999990/21/XYZ-1234?linkType=all",
     "https://id.gs1.org/01/04012345999990/21/XYZ-1234"),
    ("https://id.gs1.org/01/10614141073464/10/LOT7/21/2017",
     "https://id.gs1.org/01/10614141073464/21/2017"),
    ("https://id.gs1.org/gtin/10614141073464/ser/2017",
     "https://id.gs1.org/01/10614141073464/21/2017"),
    ("https://id.gs1.org/414/0614141007776/", "https://id.gs1.org/414/0614141007776"),
])
def test_digital_link_spellings_are_constrained(spelling: str, canonical: str) -> None:
    assert normalise_epc(spelling) == canonical


@pytest.mark.parametrize("other", ["urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                                   "https://example.com/pallet/17", "urn:epc:id:gid:95100000.1.1",
                                   "urn:epc:idpat:sgtin:0614141.*.*"])
def test_other_uris_are_their_own_key(other: str) -> None:
    assert normalise_epc(other) == other


@pytest.mark.parametrize(("value", "rule"), [
    ("0614141.107346.2017", "uri"), ("", "uri"), (17, "uri"), ("urn:epc:id:sgtin:1.2.3", "epc_uri"),
    ("urn:epc:id:sgtin:0614141.107346." + "9" * 21, "epc_uri"),
    ("urn:epc:id:sgln:0614141.00777", "epc_uri"),
])
def test_bad_identifiers_are_refused(value: object, rule: str) -> None:
    with pytest.raises(MalformedRecord) as info:
        normalise_epc(value, field="epcList[0]")
    assert (info.value.field, info.value.rule) == ("epcList[0]", rule)


@pytest.mark.parametrize(("body", "check"), [
    ("1061414107346", "4"), ("0401234511111", "8"), ("0614141007776"[:-1], "6"),
    ("10614141234567890", "8"), ("629104150021", "3"), ("9780306406157"[:-1], "7"),
])
def test_gs1_check_digit(body: str, check: str) -> None:
    assert gs1_check_digit(body) == check


def test_history_finds_the_same_goods_in_either_spelling() -> None:
    urn_scan = _event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"])
    dl_scan = _event(epcList=["https://id.gs1.org/01/10614141073464/21/2017"],
                     bizStep="receiving")
    first, second = validate_document(_doc(urn_scan, dl_scan))
    assert first.epcs == second.epcs == ("https://id.gs1.org/01/10614141073464/21/2017",)
    assert first.read_point == "https://id.gs1.org/414/0614141073467/254/1234"


# -- the CBV 2.0 event hash ------------------------------------------------------------

# Worked examples of the reference implementation's README (identical for CBV 2.0 and 2.1
# for example 1), and its expected CBV 2.0 hash for CertificationInfoAndSensorReportWithCRS.
REFERENCE_EXAMPLES: list[tuple[str, dict[str, Any], str]] = [
    ("example1-user-extensions", {
        "@context": [CONTEXT, {"example": "https://ns.example.com/epcis/"}],
        "type": "ObjectEvent", "eventTime": "2020-03-04T11:00:30.000+01:00",
        "eventTimeZoneOffset": "+01:00", "recordTime": "2020-03-04T11:00:30.999+01:00",
        "epcList": ["urn:epc:id:sscc:4012345.0000000333", "urn:epc:id:sscc:4012345.0000000111",
                    "urn:epc:id:sscc:4012345.0000000222"],
        "action": "OBSERVE", "bizStep": "departing",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.987"},
        "example:myField1": {"example:mySubField1": "2", "example:mySubField2": "5"},
        "example:myField2": "0",
        "example:myField3": {"example:mySubField3": ["3", "1"]},
    }, "6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7"),
    ("example2-sensor-data", {
        "@context": [CONTEXT],
        "type": "ObjectEvent", "eventTime": "2020-04-01T15:00:00+01:00",
        "eventTimeZoneOffset": "+01:00", "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"],
        "action": "OBSERVE", "bizStep": "inspecting",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00005.0"},
        "sensorElementList": [{
            "sensorMetadata": {"deviceID": "urn:epc:id:giai:4000001.111",
                               "deviceMetadata": "https://id.gs1.org/8004/4000001111"},
            "sensorReport": [
                {"type": "Temperature", "value": 26, "sDev": 0.1, "uom": "CEL"},
                {"type": "AbsoluteHumidity", "value": 12.1, "uom": "A93"},
                {"type": "Dimensionless",
                 "microorganism": "https://www.ncbi.nlm.nih.gov/taxonomy/1126011",
                 "value": 0.05, "uom": "C35"},
                {"type": "Dimensionless",
                 "chemicalSubstance":
                     "https://identifiers.org/inchikey:CZMRCDWAGMRECN-UGDNZRGBSA-N",
                 "value": 0.18, "uom": "C35"}]}],
    }, "271565c346ae2fb28c4583c4dca4ab4772d465eb4e0b6e548d77d8b49377d95c"),
    ("example3-transactions-and-readpoint-extension", {
        "@context": [CONTEXT, {"example": "https://ns.example.com/epcis/"}],
        "type": "ObjectEvent", "eventTime": "2020-03-04T11:00:30+01:00",
        "eventTimeZoneOffset": "+01:00", "epcList": ["urn:epc:id:sgtin:0614141.011111.987"],
        "action": "OBSERVE", "bizStep": "departing", "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00011.0", "example:myField1": "AB-12"},
        "bizTransactionList": [{"type": "po",
                                "bizTransaction": "urn:epc:id:gdti:4012345.11111.123"}],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:4012345.00000"}],
        "destinationList": [{"type": "owning_party",
                             "destination": "urn:epc:id:pgln:0614141.00000"}],
        "example:userExt": "CD-34",
    }, "3ae14c02c4bdc220cc31942cf804f6845eb8dec96ba6483391c92a9b165f9329"),
    ("certification-info-and-crs", {
        "@context": [CONTEXT, {"cbv": "https://ref.gs1.org/cbv/"},
                     {"ext1": "https://ns.ext.de/epcis/"}],
        "type": "ObjectEvent", "eventTime": "2023-01-11T12:00:00+01:00",
        "eventTimeZoneOffset": "+01:00",
        "certificationInfo": "https://accreditation-council.example.org/certificate/ABC12345",
        "epcList": ["https://id.gs1.de/01/04012345999990/21/XYZ-1234"], "action": "OBSERVE",
        "bizStep": "receiving", "disposition": "in_progress",
        "readPoint": {"id": "https://id.gs1.de/414/4012345000115"},
        "sensorElementList": [{
            "sensorMetadata": {"time": "2023-01-11T11:05:00Z",
                               "bizRules": "https://id.example.com/253/4012345000054987",
                               "ext1:someFurtherMetadata": "metadataText"},
            "sensorReport": [{"type": "Dimensionless", "exception": "ALARM_CONDITION",
                              "coordinateReferenceSystem":
                                  "http://www.opengis.net/def/crs/EPSG/0/27700",
                              "ext1:someFurtherReportData": "reportText"}]}],
    }, "db3f717972b6be7ce2eb2f31a12b00beda1f9a7de63c23948f4b7314ffe0581b"),
]


@pytest.mark.parametrize(("name", "event", "digest"), REFERENCE_EXAMPLES,
                         ids=[r[0] for r in REFERENCE_EXAMPLES])
def test_event_hash_matches_the_reference_examples(name: str, event: dict[str, Any],
                                                   digest: str) -> None:
    expected = f"ni:///sha-256;{digest}?ver=CBV2.0"
    assert event_hash(event) == expected
    [validated] = validate_document(copy.deepcopy(event))
    assert validated.event_id == expected and validated.event_id_is_hash


def test_pre_hash_string_of_reference_example_3() -> None:
    assert prehash_string(REFERENCE_EXAMPLES[2][1]) == (
        "eventType=ObjectEvent"
        "eventTime=2020-03-04T10:00:30.000ZeventTimeZoneOffset=+01:00"
        "epcListepc=https://id.gs1.org/01/00614141111114/21/987"
        "action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-departing"
        "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
        "readPointid=https://id.gs1.org/414/4012345000115"
        "bizTransactionListtype=https://ref.gs1.org/cbv/BTT-po"
        "bizTransaction=https://id.gs1.org/253/4012345111118123"
        "sourceListtype=https://ref.gs1.org/cbv/SDT-owning_party"
        "source=https://id.gs1.org/417/4012345000009"
        "destinationListtype=https://ref.gs1.org/cbv/SDT-owning_party"
        "destination=https://id.gs1.org/417/0614141000005"
        "readPoint{https://ns.example.com/epcis/}myField1=AB-12"
        "{https://ns.example.com/epcis/}userExt=CD-34")


def test_comments_stay_out_of_the_hash_like_the_reference_pre_hash() -> None:
    # tests/examples/documents/epcisDocHavingEventWithComment.jsonld of the reference
    # implementation and its expected pre-hash string.
    event = {"type": "ObjectEvent", "action": "OBSERVE",
             "rdfs:comment": "An ObjectEvent may be used for reporting an observation",
             "bizStep": "shipping", "disposition": "in_transit",
             "epcList": ["urn:epc:id:sgtin:0614141.107346.2017",
                         "urn:epc:id:sgtin:0614141.107346.2018"],
             "eventTime": "2005-04-03T20:33:31.116000-06:00", "eventTimeZoneOffset": "-06:00",
             "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
             "bizTransactionList": [{"type": "po",
                                     "bizTransaction": "http://transaction.acme.com/po/12345678"}]}
    assert prehash_string(event) == (
        "eventType=ObjectEventeventTime=2005-04-04T02:33:31.116ZeventTimeZoneOffset=-06:00"
        "epcListepc=https://id.gs1.org/01/10614141073464/21/2017"
        "epc=https://id.gs1.org/01/10614141073464/21/2018action=OBSERVE"
        "bizStep=https://ref.gs1.org/cbv/BizStep-shipping"
        "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
        "readPointid=https://id.gs1.org/414/0614141073467/254/1234"
        "bizTransactionListtype=https://ref.gs1.org/cbv/BTT-po"
        "bizTransaction=http://transaction.acme.com/po/12345678")
    # The shared ObjectEvent_with_error_declaration.json holds the same event with an error
    # declaration, which the hash leaves out.
    doc = _load(TESTDATA / "valid" / "ObjectEvent_with_error_declaration.json")
    first = doc["epcisBody"]["eventList"][0]
    assert first.pop("eventID") and event_hash(first) == event_hash(event)


def test_the_hash_of_an_accepted_event_can_be_recomputed_from_raw() -> None:
    for path in VALID:
        for event in validate_document(_load(path)):
            if event.event_id_is_hash:
                assert event_hash(event.raw, dict(event.namespaces)) == event.event_id


# The reference implementation's expected CBV 2.0 hashes of three of the shared documents.
SHARED_HASHES = {
    "AssociationEvent_all_possible_fields.json":
        "3dada0cdabe84618e9f0b842031159cb49534f487d5714cac9cfd647bf5f6c54",
    "ObjectEvent_all_possible_fields.json":
        "9811bfb2672e9c3a0f6151be339d22b60db375c8b23d2740f6137cc6539f0639",
    "epcisDocWithAllGS1Keys.json":
        "40744f32beff53a4bf5bb5956d465cb52de5bbcc9f131409d8efb903b04d9351",
}


@pytest.mark.parametrize("name", sorted(SHARED_HASHES))
def test_event_hash_of_shared_documents_matches_the_reference(name: str) -> None:
    doc = _load(TESTDATA / "valid" / name)
    doc["epcisBody"]["eventList"][0].pop("eventID", None)
    [event] = validate_document(doc)
    assert event.event_id == f"ni:///sha-256;{SHARED_HASHES[name]}?ver=CBV2.0"


def _reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order and every array reversed."""
    if isinstance(value, dict):
        return {k: _reordered(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reordered(v) for v in reversed(value)]
    return value


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_event_hash_ignores_key_and_list_order(path: Path) -> None:
    doc = _load(path)
    for event in doc["epcisBody"]["eventList"]:
        event.pop("eventID", None)
    original = [e.event_id for e in validate_document(doc)]
    reordered = _reordered(doc)
    reordered["@context"] = doc["@context"]  # JSON-LD context order matters
    assert [e.event_id for e in validate_document(reordered)] == list(reversed(original))


def test_event_hash_is_stable_across_spellings_and_sensitive_to_values() -> None:
    base = _event(epcList=["urn:epc:id:sgtin:0614141.107346.2017",
                           "urn:epc:id:sgtin:0614141.107346.2018"],
                  bizTransactionList=[{"type": "po", "bizTransaction": "urn:x:po:1"},
                                      {"type": "desadv", "bizTransaction": "urn:x:asn:9"}],
                  quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877",
                                 "quantity": 200.0, "uom": "KGM"}])
    same = copy.deepcopy(base)
    same["epcList"] = ["https://id.gs1.org/01/10614141073464/21/2018",
                       "https://id.gs1.org/01/10614141073464/21/2017"]
    same["bizTransactionList"].reverse()
    same["eventTime"] = "2026-01-05T09:00:00Z"  # the same instant in UTC
    same["quantityList"][0]["quantity"] = 200
    same["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping"
    same["recordTime"] = "2026-01-06T00:00:00Z"  # not part of the hash
    same["readPoint"] = {"id": "https://id.gs1.org/414/0614141073467/254/1234"}
    assert event_hash(base) == event_hash(same) == event_hash(_reordered(same))
    for change in ({"action": "ADD"}, {"eventTime": "2026-01-05T10:00:00.001+01:00"},
                   {"eventTimeZoneOffset": "+02:00"}, {"disposition": "in_progress"},
                   {"epcList": ["urn:epc:id:sgtin:0614141.107346.2017"]}):
        assert event_hash({**base, **change}) != event_hash(base), change


# -- robustness --------------------------------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(max_size=12)
            | st.sampled_from(["ObjectEvent", "AggregationEvent", "TransactionEvent",
                               "TransformationEvent", "AssociationEvent", "EPCISDocument",
                               "ADD", "OBSERVE", "DELETE", "shipping", "in_transit", "+01:00",
                               "2026-01-05T10:00:00Z", "urn:epc:id:sgtin:0614141.107346.2017",
                               "https://id.gs1.org/01/10614141073464/21/2017", "example:x",
                               "urn:epc:id:sscc:0614141.1", "gs1:x", "@context", "ext1:a"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10) | st.sampled_from(
                         ["type", "eventTime", "epcList", "quantityList", "readPoint", "id",
                          "ilmd", "sensorReport", "epcClass", "example:x", "@context"]),
                         inner, max_size=4), max_leaves=12)
_EVENT_FIELDS = sorted({"type", "eventTime", "eventTimeZoneOffset", "action", "epcList",
                        "quantityList", "parentID", "childEPCs", "childQuantityList",
                        "inputEPCList", "outputEPCList", "inputQuantityList",
                        "outputQuantityList", "transformationID", "bizStep", "disposition",
                        "readPoint", "bizLocation", "bizTransactionList", "sourceList",
                        "destinationList", "sensorElementList", "ilmd", "errorDeclaration",
                        "certificationInfo", "persistentDisposition", "eventID", "recordTime",
                        "@context"})


def _outcome(doc: Any) -> None:
    try:
        events = validate_document(doc)
    except MalformedRecord as exc:
        assert isinstance(exc.field, str) and exc.field and isinstance(exc.rule, str)
        return
    for event in events:
        assert isinstance(event, Event)
        assert event_hash(event.raw).startswith("ni:///sha-256;")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_random_json_only_ever_raises_malformed_record(doc: Any) -> None:
    _outcome(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ObjectEvent", "AggregationEvent", "TransactionEvent",
                        "TransformationEvent", "AssociationEvent"]),
       st.dictionaries(st.sampled_from(_EVENT_FIELDS), _JSON, max_size=8))
def test_random_events_only_ever_raise_malformed_record(kind: str,
                                                        fields: dict[str, Any]) -> None:
    event = {"eventTime": "2026-01-05T10:00:00Z", "eventTimeZoneOffset": "+00:00",
             "action": "ADD", **fields, "type": kind}
    _outcome(_doc(event))
    _outcome({"@context": [CONTEXT], **event})


def _locations(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) inside a JSON value."""
    found: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((node, key))
            found.extend(_locations(value))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((node, index))
            found.extend(_locations(value))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID) if VALID else st.nothing(), st.data())
def test_mutated_valid_documents_only_ever_raise_malformed_record(path: Path,
                                                                  data: st.DataObject) -> None:
    doc = _load(path)
    for _ in range(data.draw(st.integers(1, 3))):
        locations = _locations(doc)
        container, key = data.draw(st.sampled_from(locations))
        action = data.draw(st.sampled_from(["replace", "delete", "insert", "wrap"]))
        if action == "replace":
            container[key] = data.draw(_JSON)
        elif action == "delete":
            del container[key]
        elif action == "wrap":
            container[key] = [container[key]]
        elif isinstance(container, dict):
            container[data.draw(st.text(max_size=8) | st.sampled_from(_EVENT_FIELDS))] = \
                data.draw(_JSON)
        else:
            container.insert(key, data.draw(_JSON))
    _outcome(doc)


def test_non_json_python_values_are_refused_not_crashed_on() -> None:
    for weird in ({"type": "EPCISDocument", 1: 2}, {"type": b"ObjectEvent"},
                  _doc(_event(epcList=("urn:x:1",))), _doc(_event(**{"example:x": {1, 2}})),
                  _doc(_event(quantityList=[{"epcClass": "urn:x:1", "quantity": 10**400}])),
                  _doc(_event(quantityList=[{"epcClass": "urn:x:1",
                                             "quantity": float("nan")}]))):
        with pytest.raises(MalformedRecord):
            validate_document(weird)


# -- speed --------------------------------------------------------------------------------

def test_validation_is_fast_enough() -> None:
    """A generous bound (the target is >10,000 simple events/s); it catches regressions."""
    events = [_event(epcList=[f"urn:epc:id:sgtin:0614141.107346.{i}"],
                     eventTime=f"2026-01-05T10:00:00.{i % 1000:03d}+01:00") for i in range(2000)]
    doc = _doc(*events)
    start = time.process_time()
    assert len(validate_document(doc)) == 2000
    assert time.process_time() - start < 2.0
