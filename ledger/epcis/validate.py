"""Validation of EPCIS 2.0 JSON-LD documents and events (a hand-written validator).

The rules are those of the EPCIS 2.0 standard (section 7.4, the event types),
its JSON schema (``epcis-json-schema.json``: required fields, allowed fields per
type, formats) and CBV 2.0 (the standard vocabularies). ``specs/epcis.md`` lists
them with the ``field``/``rule`` pair of the error each one raises.

Errors are :class:`ledger.errors.MalformedRecord`; ``field`` is a JSON path into
the input (``epcisBody.eventList[0].quantityList[1].weight``) and ``rule`` a short
machine-readable name. The first error is reported, in a fixed order: per event,
presence of required fields, then field names (in sorted order), then values in
the order of the standard, then rules across fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Set
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from ledger.epcis.hashing import context_prefixes, event_hash
from ledger.epcis.identifiers import is_uri, translate
from ledger.epcis.model import (
    BizTransaction,
    ErrorDeclaration,
    Event,
    QuantityElement,
    SourceDestination,
)
from ledger.epcis.vocab import (
    BIZ_STEP,
    BIZ_TRANSACTION_TYPE,
    COMPONENT,
    DISPOSITION,
    ERROR_REASON,
    MEASUREMENT_TYPE,
    SENSOR_ALERT_TYPE,
    SOURCE_DESTINATION_TYPE,
    Vocabulary,
)
from ledger.errors import MalformedRecord

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
               "AssociationEvent")

#: Prefixes the standard EPCIS 2.0 JSON-LD context declares.
STANDARD_PREFIXES = frozenset({"epcis", "cbv", "cbvmda", "gs1", "rdf", "rdfs", "owl", "xsd",
                               "dcterms", "sh", "skos", "schema"})

_COMMON = frozenset({"@context", "type", "eventTime", "recordTime", "eventTimeZoneOffset",
                     "eventID", "certificationInfo", "errorDeclaration"})
_WHAT_WHERE_WHY = frozenset({"bizStep", "disposition", "readPoint", "bizLocation",
                             "bizTransactionList", "sourceList", "destinationList",
                             "sensorElementList"})
ALLOWED_FIELDS: dict[str, frozenset[str]] = {
    "ObjectEvent": _COMMON | _WHAT_WHERE_WHY | {"action", "epcList", "quantityList",
                                                "persistentDisposition", "ilmd"},
    "AggregationEvent": _COMMON | _WHAT_WHERE_WHY | {"action", "parentID", "childEPCs",
                                                     "childQuantityList",
                                                     "persistentDisposition"},
    "TransactionEvent": _COMMON | _WHAT_WHERE_WHY | {"action", "parentID", "epcList",
                                                     "quantityList", "persistentDisposition"},
    "TransformationEvent": _COMMON | _WHAT_WHERE_WHY | {"inputEPCList", "inputQuantityList",
                                                        "outputEPCList", "outputQuantityList",
                                                        "transformationID",
                                                        "persistentDisposition", "ilmd"},
    "AssociationEvent": _COMMON | _WHAT_WHERE_WHY | {"action", "parentID", "childEPCs",
                                                     "childQuantityList",
                                                     "persistentDisposition"},
}
_ALL_EVENT_FIELDS = frozenset().union(*ALLOWED_FIELDS.values())

_DOCUMENT_FIELDS = frozenset({"@context", "id", "type", "schemaVersion", "creationDate",
                              "instanceIdentifier", "sender", "receiver", "epcisHeader",
                              "epcisBody"})
_QUERY_DOCUMENT_FIELDS = frozenset({"@context", "id", "type", "schemaVersion", "creationDate",
                                    "epcisBody"})
_METADATA_FIELDS = {"time": "time", "startTime": "time", "endTime": "time", "deviceID": "uri",
                    "deviceMetadata": "uri", "rawData": "uri", "dataProcessingMethod": "uri",
                    "bizRules": "uri"}
_REPORT_FIELDS = {"type": "vocab", "exception": "vocab", "component": "vocab",
                  "deviceID": "uri", "deviceMetadata": "uri", "rawData": "uri",
                  "dataProcessingMethod": "uri", "bizRules": "uri", "time": "time",
                  "microorganism": "uri", "chemicalSubstance": "uri",
                  "coordinateReferenceSystem": "uri", "value": "number", "stringValue": "string",
                  "booleanValue": "boolean", "hexBinaryValue": "hex", "uriValue": "uri",
                  "minValue": "number", "maxValue": "number", "meanValue": "number",
                  "sDev": "number", "percRank": "number", "percValue": "number",
                  "uom": "string"}
_REPORT_VOCAB: dict[str, tuple[Vocabulary, str]] = {
    "type": (MEASUREMENT_TYPE, "measurement_type"),
    "exception": (SENSOR_ALERT_TYPE, "sensor_alert_type"),
    "component": (COMPONENT, "cbv_component"),
}
_CERT_DETAILS = {
    "gs1:certificationAgency": "string", "gs1:certificationAgencyURL": "any",
    "gs1:certificationAuditDate": "date", "gs1:certificationEndDate": "date",
    "gs1:certificationIdentification": "string", "gs1:certificationStandard": "string",
    "gs1:certificationStartDate": "date", "gs1:certificationStatement": "string",
    "gs1:certificationStatus": "status", "gs1:certificationSubject": "string",
    "gs1:certificationType": "string", "gs1:certificationURI": "uri",
    "gs1:certificationValue": "string", "gs1:initialCertificationDate": "date",
}

_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,32}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_OFFSET = re.compile(r"[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)", re.ASCII)
_UOM = re.compile(r"[A-Z0-9]{2,3}", re.ASCII)
_HEX = re.compile(r"[A-Fa-f0-9]+", re.ASCII)
_VERSION = re.compile(r"\d+(?:\.\d+)*", re.ASCII)
_CURIE_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):(\S+)", re.ASCII)
_PLAIN_KEY = re.compile(r"[A-Za-z_@$][A-Za-z0-9_:@$\-]*")
_MAX_DEPTH = 32


# --- paths and errors -------------------------------------------------------------

@lru_cache(maxsize=4096)
def _segment(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return "." + key
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def _p(base: str, *parts: str | int) -> str:
    """Append keys (str) and list indexes (int) to a JSON path."""
    path = base
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            segment = _segment(part)
            path = path + segment if path or segment[0] == "[" else segment[1:]
    return path


def _fail(message: str, path: str, rule: str) -> MalformedRecord:
    return MalformedRecord(message, field=path or "$", rule=rule)


def _show(value: object) -> str:
    """A short description of an offending value (never the repr of a container)."""
    if value is None or isinstance(value, str | bool | int | float):
        text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "<number>"
        return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


# --- scalar checks ------------------------------------------------------------------

def _parse_date_time(value: object, base: str, *parts: str | int) -> datetime:
    m = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise _fail(f"{_show(value)} is not an RFC 3339 date-time with a time zone, like "
                    "2026-01-31T12:00:00.000+01:00", _p(base, *parts), "date_time")
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        if off in ("Z", "z"):
            tz = UTC
        else:
            hours, minutes = int(off[1:3]), int(off[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("time zone offset out of range")
            delta = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-delta if off[0] == "-" else delta)
        micro = int((frac or "0")[:6].ljust(6, "0"))
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _fail(f"{_show(value)}: {exc}", _p(base, *parts), "date_time") from None


def _check_date(value: object, path: str) -> None:
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
            return
        except ValueError:
            pass
    raise _fail(f"{_show(value)} is not a date like 2026-01-31", path, "date")


def _uri(value: object, base: str, *parts: str | int) -> str:
    if not isinstance(value, str) or not is_uri(value):
        raise _fail(f"{_show(value)} is not a URI", _p(base, *parts), "uri")
    return value


def _epc(value: object, base: str, *parts: str | int) -> str:
    """A URI; an EPC URN of a known scheme must follow the Tag Data Standard. Returns the
    canonical key."""
    if not isinstance(value, str) or not is_uri(value):
        raise _fail(f"{_show(value)} is not a URI", _p(base, *parts), "uri")
    key, error = translate(value)
    if error is not None:
        raise _fail(error, _p(base, *parts), "epc_uri")
    return key


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"{_show(value)} is not a string", path, "string")
    return value


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{_show(value)} is not a number", path, "number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _fail(f"{_show(value)} is not a finite number", path, "number")
    return number


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"must be a JSON object, not {type(value).__name__}", path, "object")
    for key in value:
        if not isinstance(key, str):
            raise _fail(f"object key {_show(key)} is not a string", path, "key")
    return value


def _list(value: object, path: str, *, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"must be a JSON array, not {type(value).__name__}", path, "array")
    if len(value) < min_items:
        raise _fail(f"must have at least {min_items} item(s)", path, "min_items")
    return value


def _vocab(value: object, vocab: Vocabulary, rule: str, base: str, *parts: str | int) -> str:
    """A standard term (returned bare) or a custom URI outside the standard namespace."""
    if isinstance(value, str):
        term = vocab.short(value)
        if term is not None:
            return term
        if is_uri(value) and not vocab.claims(value):
            return value
        if vocab.claims(value):
            raise _fail(f"{_show(value)} is not a CBV 2.0 {vocab.name}", _p(base, *parts),
                        rule)
    raise _fail(f"{_show(value)} is neither a CBV 2.0 standard {vocab.name} nor a URI "
                "(custom values must be full URIs)", _p(base, *parts), rule)


# --- namespaces and extension fields -----------------------------------------------

class _Scope:
    """The JSON-LD prefixes in force: IRIs for hashing, names for the declared check."""

    __slots__ = ("items", "namespaces", "prefixes")

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = namespaces
        self.prefixes = STANDARD_PREFIXES.union(namespaces)
        self.items = tuple(sorted(namespaces.items()))

    def child(self, obj: Mapping[str, Any], path: str) -> _Scope:
        if "@context" not in obj:
            return self
        extra = _context(obj["@context"], _p(path, "@context"))
        if not extra:
            return self
        return _Scope({**self.namespaces, **extra})


def _context(value: object, path: str) -> dict[str, str]:
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        where = _p(path, i) if isinstance(value, list) else path
        if isinstance(item, str):
            _uri(item, where)
        elif isinstance(item, dict):
            _object(item, where)
        else:
            raise _fail("a JSON-LD context is a URI, an object or an array of those", where,
                        "context")
    return context_prefixes(value)


def _extension_key(key: str, path: str, scope: _Scope, *, known: bool = False) -> None:
    """A user extension field name must be namespaced: ``prefix:name`` with a declared
    prefix, or a full URI."""
    m = _CURIE_KEY.fullmatch(key)
    if m is None:
        if known:
            raise _fail("field not allowed here", _p(path, key), "unknown_field")
        raise _fail("unknown field; user extension fields must be namespaced "
                    "(prefix:name with a prefix declared in @context, or a full URI)",
                    _p(path, key), "not_namespaced")
    prefix, rest = m.groups()
    if prefix in scope.prefixes:
        return
    if rest.startswith("//") or prefix == "urn":
        return
    raise _fail(f"prefix {prefix!r} is not declared in @context", _p(path, key),
                "undeclared_prefix")


def _is_json(value: object, depth: int = 0) -> bool:
    """Fast check: a JSON value with string keys, finite numbers, at most _MAX_DEPTH deep."""
    if depth > _MAX_DEPTH:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _extension_value(value: object, path: str, depth: int = 0) -> None:
    """A user extension's value is any JSON; find and report what is not."""
    if depth == 0 and _is_json(value):
        return
    if depth > _MAX_DEPTH:
        raise _fail(f"nested deeper than {_MAX_DEPTH} levels", path, "too_deep")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail("not a finite number", path, "number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _extension_value(item, _p(path, i), depth + 1)
        return
    if isinstance(value, dict):
        for key, item in _object(value, path).items():
            _extension_value(item, _p(path, key), depth + 1)
        return
    raise _fail(f"{type(value).__name__} is not a JSON value", path, "json")


def _check_fields(obj: dict[str, Any], allowed: Set[str], path: str,
                  scope: _Scope, *, closed: bool = False,
                  known: frozenset[str] = frozenset()) -> None:
    """Every field is allowed or, unless ``closed``, a namespaced extension field."""
    extra = obj.keys() - allowed
    if not extra:
        return
    for key in sorted(extra):
        if closed:
            raise _fail("field not allowed here", _p(path, key), "unknown_field")
        if key == "@context":
            continue
        _extension_key(key, path, scope, known=key in known)
        _extension_value(obj[key], _p(path, key))


# --- parts of an event --------------------------------------------------------------

def _identifiers(event: dict[str, Any], name: str, path: str) -> tuple[str, ...]:
    if name not in event:
        return ()
    values = _list(event[name], _p(path, name))
    out = tuple(_epc(value, path, name, i) for i, value in enumerate(values))
    if len(set(values)) != len(values):
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                raise _fail(f"{value!r} is listed twice", _p(path, name, i), "duplicate")
            seen.add(value)
    return out


def _quantity_list(event: dict[str, Any], name: str, path: str,
                   scope: _Scope) -> list[QuantityElement]:
    if name not in event:
        return []
    where = _p(path, name)
    out: list[QuantityElement] = []
    for i, item in enumerate(_list(event[name], where)):
        at = _p(where, i)
        element = _object(item, at)
        _check_fields(element, {"epcClass", "quantity", "uom"}, at, scope, closed=True)
        if "epcClass" not in element:
            raise _fail("required field missing", _p(at, "epcClass"), "required")
        epc_class = _epc(element["epcClass"], at, "epcClass")
        quantity = None
        if "quantity" in element:
            quantity = _number(element["quantity"], _p(at, "quantity"))
        uom = None
        if "uom" in element:
            uom = element["uom"]
            if not isinstance(uom, str) or not _UOM.fullmatch(uom):
                raise _fail(f"{_show(uom)} is not a UN/CEFACT Rec. 20 unit code (2-3 "
                            "capital letters or digits)", _p(at, "uom"), "uom")
        out.append(QuantityElement(name, epc_class, quantity, uom))
    return out


def _location(event: dict[str, Any], name: str, path: str, scope: _Scope) -> str | None:
    if name not in event:
        return None
    where = _p(path, name)
    obj = _object(event[name], where)
    inner = scope.child(obj, where)
    if "id" not in obj:
        raise _fail("required field missing", _p(where, "id"), "required")
    _check_fields(obj, {"id"}, where, inner)
    return _epc(obj["id"], where, "id")


def _biz_transactions(event: dict[str, Any], path: str,
                      scope: _Scope) -> tuple[BizTransaction, ...]:
    name = "bizTransactionList"
    if name not in event:
        return ()
    where = _p(path, name)
    minimum = 1 if event.get("type") == "TransactionEvent" else 0
    out: list[BizTransaction] = []
    for i, item in enumerate(_list(event[name], where, min_items=minimum)):
        at = _p(where, i)
        obj = _object(item, at)
        _check_fields(obj, {"type", "bizTransaction"}, at, scope, closed=True)
        if "bizTransaction" not in obj:
            raise _fail("required field missing", _p(at, "bizTransaction"), "required")
        btt = None
        if "type" in obj:
            btt = _vocab(obj["type"], BIZ_TRANSACTION_TYPE, "cbv_btt", at, "type")
        out.append(BizTransaction(btt, _epc(obj["bizTransaction"], at, "bizTransaction")))
    return tuple(out)


def _sources(event: dict[str, Any], name: str, id_field: str, path: str,
             scope: _Scope) -> tuple[SourceDestination, ...]:
    if name not in event:
        return ()
    where = _p(path, name)
    out: list[SourceDestination] = []
    for i, item in enumerate(_list(event[name], where)):
        at = _p(where, i)
        obj = _object(item, at)
        _check_fields(obj, {"type", id_field}, at, scope, closed=True)
        for required in ("type", id_field):
            if required not in obj:
                raise _fail("required field missing", _p(at, required), "required")
        sdt = _vocab(obj["type"], SOURCE_DESTINATION_TYPE, "cbv_sdt", at, "type")
        out.append(SourceDestination(sdt, _epc(obj[id_field], at, id_field)))
    return tuple(out)


def _persistent_disposition(event: dict[str, Any], path: str, scope: _Scope) -> None:
    if "persistentDisposition" not in event:
        return
    where = _p(path, "persistentDisposition")
    obj = _object(event["persistentDisposition"], where)
    _check_fields(obj, {"set", "unset"}, where, scope, closed=True)
    if "set" not in obj and "unset" not in obj:
        raise _fail("needs set or unset", _p(where, "set"), "required")
    for op in ("set", "unset"):
        if op not in obj:
            continue
        seen: set[str] = set()
        for i, value in enumerate(_list(obj[op], _p(where, op), min_items=1)):
            term = _vocab(value, DISPOSITION, "cbv_disposition", where, op, i)
            if term in seen:
                raise _fail(f"{term!r} is listed twice", _p(where, op, i), "duplicate")
            seen.add(term)


def _sensor_fields(obj: dict[str, Any], spec: dict[str, str], path: str) -> None:
    for key, kind in spec.items():
        if key not in obj:
            continue
        value, at = obj[key], _p(path, key)
        if kind == "time":
            _parse_date_time(value, at)
        elif kind == "uri":
            _uri(value, at)
        elif kind == "number":
            _number(value, at)
        elif kind == "string":
            _string(value, at)
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _fail(f"{_show(value)} is not true or false", at, "boolean")
        elif kind == "hex":
            if not isinstance(value, str) or not _HEX.fullmatch(value):
                raise _fail(f"{_show(value)} is not hexadecimal", at, "hex_binary")
        elif kind == "vocab":
            vocab, rule = _REPORT_VOCAB[key]
            _vocab(value, vocab, rule, at)


def _sensor_elements(event: dict[str, Any], path: str, scope: _Scope) -> None:
    if "sensorElementList" not in event:
        return
    where = _p(path, "sensorElementList")
    for i, item in enumerate(_list(event["sensorElementList"], where)):
        at = _p(where, i)
        element = _object(item, at)
        inner = scope.child(element, at)
        if "sensorReport" not in element:
            raise _fail("required field missing", _p(at, "sensorReport"), "required")
        _check_fields(element, {"sensorMetadata", "sensorReport"}, at, inner)
        if "sensorMetadata" in element:
            meta_at = _p(at, "sensorMetadata")
            meta = _object(element["sensorMetadata"], meta_at)
            _check_fields(meta, _METADATA_FIELDS.keys(), meta_at, inner.child(meta, meta_at))
            _sensor_fields(meta, _METADATA_FIELDS, meta_at)
        reports_at = _p(at, "sensorReport")
        for j, report_item in enumerate(_list(element["sensorReport"], reports_at,
                                              min_items=1)):
            report_at = _p(reports_at, j)
            report = _object(report_item, report_at)
            if "type" not in report:
                raise _fail("required field missing", _p(report_at, "type"), "required")
            _check_fields(report, _REPORT_FIELDS.keys(), report_at,
                          inner.child(report, report_at))
            _sensor_fields(report, _REPORT_FIELDS, report_at)


def _ilmd(event: dict[str, Any], path: str, scope: _Scope) -> None:
    if "ilmd" not in event:
        return
    where = _p(path, "ilmd")
    obj = _object(event["ilmd"], where)
    _check_fields(obj, set(), where, scope.child(obj, where))


def _certification_info(event: dict[str, Any], path: str) -> None:
    if "certificationInfo" not in event:
        return
    where = _p(path, "certificationInfo")
    value = event["certificationInfo"]
    if isinstance(value, str):
        _uri(value, where)
        return
    for i, item in enumerate(_list(value, where)):
        at = _p(where, i)
        if isinstance(item, str):
            _uri(item, at)
            continue
        wrapper = _object(item, at)
        if set(wrapper) != {"gs1:CertificationDetails"}:
            raise _fail("each entry is a certificate URI or an object with the single field "
                        "gs1:CertificationDetails", at, "certification_info")
        details_at = _p(at, "gs1:CertificationDetails")
        details = _object(wrapper["gs1:CertificationDetails"], details_at)
        for key in sorted(details):
            kind = _CERT_DETAILS.get(key)
            field_at = _p(details_at, key)
            if kind is None:
                raise _fail("not a gs1:CertificationDetails field", field_at, "unknown_field")
            field_value = details[key]
            if kind == "date":
                _check_date(field_value, field_at)
            elif kind == "uri":
                _uri(field_value, field_at)
            elif kind == "string":
                _string(field_value, field_at)
            elif kind == "status" and field_value not in ("ACTIVE", "INACTIVE"):
                raise _fail(f"{_show(field_value)} is not ACTIVE or INACTIVE", field_at,
                            "certification_status")


def _error_declaration(event: dict[str, Any], path: str,
                       scope: _Scope) -> ErrorDeclaration | None:
    if "errorDeclaration" not in event:
        return None
    where = _p(path, "errorDeclaration")
    obj = _object(event["errorDeclaration"], where)
    inner = scope.child(obj, where)
    if "declarationTime" not in obj:
        raise _fail("required field missing", _p(where, "declarationTime"), "required")
    _check_fields(obj, {"declarationTime", "reason", "correctiveEventIDs"}, where, inner)
    when = _parse_date_time(obj["declarationTime"], where, "declarationTime")
    reason = None
    if "reason" in obj:
        reason = _vocab(obj["reason"], ERROR_REASON, "cbv_error_reason", where, "reason")
    corrective: list[str] = []
    if "correctiveEventIDs" in obj:
        ids_at = _p(where, "correctiveEventIDs")
        for i, value in enumerate(_list(obj["correctiveEventIDs"], ids_at)):
            corrective.append(_uri(value, ids_at, i))
    return ErrorDeclaration(when, reason, tuple(corrective))


def _nonempty(event: dict[str, Any], name: str) -> bool:
    """Present and, if it is a list, not empty (a wrong type is reported later)."""
    if name not in event:
        return False
    value = event[name]
    return not isinstance(value, list) or len(value) > 0


def _required(event: dict[str, Any], kind: str, path: str) -> None:
    """Presence of the mandatory fields, then the identifier list rules (EPCIS 2.0 7.4)."""
    for name in ("eventTime", "eventTimeZoneOffset"):
        if name not in event:
            raise _fail("required field missing", _p(path, name), "required")
    action = event.get("action")
    if kind != "TransformationEvent" and "action" not in event:
        raise _fail("required field missing", _p(path, "action"), "required")
    if kind == "TransactionEvent" and "bizTransactionList" not in event:
        raise _fail("required field missing", _p(path, "bizTransactionList"), "required")
    if "parentID" not in event and (
            kind == "AssociationEvent"
            or (kind == "AggregationEvent" and action in ("ADD", "DELETE"))):
        raise _fail(f"required in an {kind} with action {action}", _p(path, "parentID"),
                    "required")
    if kind == "ObjectEvent":
        if not ("epcList" in event or _nonempty(event, "quantityList")
                or (_nonempty(event, "sensorElementList") and "readPoint" in event)):
            raise _fail("an ObjectEvent needs an identifier list: epcList or quantityList "
                        "(or sensorElementList with readPoint)", _p(path, "epcList"),
                        "required")
    elif kind == "TransactionEvent":
        if not ("epcList" in event or _nonempty(event, "quantityList") or action == "DELETE"):
            raise _fail("a TransactionEvent needs epcList or quantityList",
                        _p(path, "epcList"), "required")
    elif kind in ("AggregationEvent", "AssociationEvent"):
        if not (_nonempty(event, "childEPCs") or _nonempty(event, "childQuantityList")
                or action == "DELETE"):
            raise _fail(f"an {kind} needs childEPCs or childQuantityList unless its action "
                        "is DELETE", _p(path, "childEPCs"), "required")
    else:
        inputs = _nonempty(event, "inputEPCList") or _nonempty(event, "inputQuantityList")
        outputs = _nonempty(event, "outputEPCList") or _nonempty(event, "outputQuantityList")
        if not (inputs and outputs) and not ((inputs or outputs)
                                             and "transformationID" in event):
            missing = "outputEPCList" if inputs else "inputEPCList"
            raise _fail("a TransformationEvent needs inputs and outputs, or at least one of "
                        "them and a transformationID", _p(path, missing), "required")


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _validate_event(event: object, path: str, outer: _Scope, *,
                    standalone: bool = False) -> Event:
    obj = _object(event, path)
    if "type" not in obj:
        raise _fail("required field missing", _p(path, "type"), "required")
    kind = obj["type"]
    if kind not in EVENT_TYPES:
        raise _fail(f"{_show(kind)} is not an EPCIS 2.0 event type "
                    f"({', '.join(EVENT_TYPES)})", _p(path, "type"), "event_type")
    if standalone and "@context" not in obj:
        raise _fail("required field missing", _p(path, "@context"), "required")
    scope = outer.child(obj, path)
    _required(obj, kind, path)
    _check_fields(obj, ALLOWED_FIELDS[kind], path, scope, known=_ALL_EVENT_FIELDS)

    event_time = _parse_date_time(obj["eventTime"], path, "eventTime")
    offset = obj["eventTimeZoneOffset"]
    if not isinstance(offset, str) or not _OFFSET.fullmatch(offset):
        raise _fail(f"{_show(offset)} is not a time zone offset from -14:00 to +14:00 like "
                    "+01:00", _p(path, "eventTimeZoneOffset"), "time_zone_offset")
    record_time = None
    if "recordTime" in obj:
        record_time = _parse_date_time(obj["recordTime"], path, "recordTime")
    event_id = None
    if "eventID" in obj:
        event_id = _uri(obj["eventID"], path, "eventID")
    _certification_info(obj, path)
    error = _error_declaration(obj, path, scope)

    epc_list = _identifiers(obj, "epcList", path)
    parent_id = None
    if "parentID" in obj:
        parent_id = _epc(obj["parentID"], path, "parentID")
    input_epcs = _identifiers(obj, "inputEPCList", path)
    child_epcs = _identifiers(obj, "childEPCs", path)
    quantities = _quantity_list(obj, "quantityList", path, scope)
    quantities += _quantity_list(obj, "childQuantityList", path, scope)
    quantities += _quantity_list(obj, "inputQuantityList", path, scope)
    output_epcs = _identifiers(obj, "outputEPCList", path)
    quantities += _quantity_list(obj, "outputQuantityList", path, scope)

    action = None
    if "action" in obj:
        action = obj["action"]
        if action not in ("ADD", "OBSERVE", "DELETE"):
            raise _fail(f"{_show(action)} is not ADD, OBSERVE or DELETE", _p(path, "action"),
                        "action")
    transformation_id = None
    if "transformationID" in obj:
        transformation_id = _epc(obj["transformationID"], path, "transformationID")
    biz_step = None
    if "bizStep" in obj:
        biz_step = _vocab(obj["bizStep"], BIZ_STEP, "cbv_bizstep", path, "bizStep")
    disposition = None
    if "disposition" in obj:
        disposition = _vocab(obj["disposition"], DISPOSITION, "cbv_disposition", path,
                             "disposition")
    _persistent_disposition(obj, path, scope)
    read_point = _location(obj, "readPoint", path, scope)
    biz_location = _location(obj, "bizLocation", path, scope)
    biz_transactions = _biz_transactions(obj, path, scope)
    sources = _sources(obj, "sourceList", "source", path, scope)
    destinations = _sources(obj, "destinationList", "destination", path, scope)
    _sensor_elements(obj, path, scope)
    _ilmd(obj, path, scope)
    if "ilmd" in obj and kind == "ObjectEvent" and action != "ADD":
        raise _fail("ilmd is only allowed in an ObjectEvent whose action is ADD",
                    _p(path, "ilmd"), "ilmd_action")

    is_hash = event_id is None
    if event_id is None:
        event_id = event_hash(obj, outer.namespaces)
    epcs = _unique(epc_list + ((parent_id,) if parent_id else ()) + child_epcs
                   + input_epcs + output_epcs)
    return Event(
        event_type=kind,
        event_id=event_id,
        event_id_is_hash=is_hash,
        event_time=event_time,
        event_time_zone_offset=offset,
        record_time=record_time,
        action=action,
        biz_step=biz_step,
        disposition=disposition,
        read_point=read_point,
        biz_location=biz_location,
        parent_id=parent_id,
        epc_list=epc_list,
        child_epcs=child_epcs,
        input_epcs=input_epcs,
        output_epcs=output_epcs,
        epcs=epcs,
        quantities=tuple(quantities),
        epc_classes=_unique(tuple(q.epc_class for q in quantities)),
        transformation_id=transformation_id,
        biz_transactions=biz_transactions,
        source_list=sources,
        destination_list=destinations,
        error_declaration=error,
        namespaces=outer.items,
        raw=obj,
    )


# --- documents ------------------------------------------------------------------

def _header(doc: dict[str, Any], allowed: frozenset[str], scope: _Scope) -> None:
    if "@context" not in doc:
        raise _fail("required field missing", "@context", "required")
    for name in ("schemaVersion", "creationDate"):
        if name not in doc and doc["type"] == "EPCISDocument":
            raise _fail("required field missing", name, "required")
    if "epcisBody" not in doc:
        raise _fail("required field missing", "epcisBody", "required")
    _check_fields(doc, allowed, "", scope, known=_DOCUMENT_FIELDS)
    if "id" in doc:
        _uri(doc["id"], "id")
    if "schemaVersion" in doc:
        version = doc["schemaVersion"]
        if not isinstance(version, str) or not _VERSION.fullmatch(version) \
                or version.split(".")[0] != "2":
            raise _fail(f"{_show(version)} is not an EPCIS 2.x schema version like \"2.0\"",
                        "schemaVersion", "schema_version")
    if "creationDate" in doc:
        _parse_date_time(doc["creationDate"], "creationDate")
    for name in ("instanceIdentifier", "sender", "receiver"):
        if name in doc:
            _string(doc[name], name)
    if "epcisHeader" in doc:
        header = _object(doc["epcisHeader"], "epcisHeader")
        _check_fields(header, {"epcisMasterData"}, "epcisHeader", scope)
        if "epcisMasterData" in header:
            _object(header["epcisMasterData"], "epcisHeader.epcisMasterData")


def _event_list(container: dict[str, Any], path: str, scope: _Scope) -> list[Event]:
    if "eventList" not in container:
        raise _fail("required field missing", _p(path, "eventList"), "required")
    where = _p(path, "eventList")
    return [_validate_event(item, _p(where, i), scope)
            for i, item in enumerate(_list(container["eventList"], where))]


def validate_document(doc: object) -> list[Event]:
    """Validate an EPCIS 2.0 document, query document or single event; return its events.

    Raises :class:`ledger.errors.MalformedRecord` naming the first offending field.
    """
    root = _object(doc, "")
    if "type" not in root:
        raise _fail("required field missing", "type", "required")
    kind = root["type"]
    if kind in EVENT_TYPES:
        scope = _Scope({})
        return [_validate_event(root, "", scope, standalone=True)]
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise _fail(f"{_show(kind)} is not EPCISDocument, EPCISQueryDocument or an event type",
                    "type", "document_type")
    scope = _Scope({})
    if "@context" in root:
        scope = scope.child(root, "")
    if kind == "EPCISDocument":
        _header(root, _DOCUMENT_FIELDS, scope)
        body = _object(root["epcisBody"], "epcisBody")
        _check_fields(body, {"eventList"}, "epcisBody", scope)
        return _event_list(body, "epcisBody", scope)
    _header(root, _QUERY_DOCUMENT_FIELDS, scope)
    body = _object(root["epcisBody"], "epcisBody")
    if "queryResults" not in body:
        raise _fail("required field missing", "epcisBody.queryResults", "required")
    _check_fields(body, {"queryResults"}, "epcisBody", scope)
    results = _object(body["queryResults"], "epcisBody.queryResults")
    for name in ("queryName", "resultsBody"):
        if name not in results:
            raise _fail("required field missing", _p("epcisBody.queryResults", name),
                        "required")
    _check_fields(results, {"queryName", "subscriptionID", "resultsBody"},
                  "epcisBody.queryResults", scope)
    _string(results["queryName"], "epcisBody.queryResults.queryName")
    if "subscriptionID" in results:
        _string(results["subscriptionID"], "epcisBody.queryResults.subscriptionID")
    where = "epcisBody.queryResults.resultsBody"
    results_body = _object(results["resultsBody"], where)
    _check_fields(results_body, {"eventList", "vocabularyList"}, where, scope)
    if "vocabularyList" in results_body:
        _list(results_body["vocabularyList"], _p(where, "vocabularyList"))
    return _event_list(results_body, where, scope)
