"""The EPCIS event hash ID of GS1 CBV 2.0, section 8.9.

An event's *pre-hash string* is built from its fields in a fixed order, every
value put in one canonical spelling, lists sorted; its SHA-256 digest is named
``ni:///sha-256;<hex>?ver=CBV2.0`` (RFC 6920). Two serialisations of the same
event (key order, list order, URN or Digital Link identifiers, bare or URI CBV
values, time zone of the timestamps) give the same hash; any change of a value
gives another. ``specs/epcis.md`` section 4 states the rules in full.

The function expects an event that :func:`ledger.epcis.validate_document` has
accepted; on other input it still returns a string and never raises.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.epcis.identifiers import canonical_identifier, is_uri
from ledger.epcis.vocab import (
    BIZ_STEP,
    BIZ_TRANSACTION_TYPE,
    COMPONENT,
    DISPOSITION,
    GS1_VOC_WEB,
    MEASUREMENT_TYPE,
    SENSOR_ALERT_TYPE,
    SOURCE_DESTINATION_TYPE,
    URN_TO_WEB,
    Vocabulary,
)

HASH_VERSION = "CBV2.0"

#: Namespaces of the prefixes the EPCIS 2.0 context defines, as the hash writes them.
STANDARD_NAMESPACES: dict[str, str] = {
    "cbv": "https://ref.gs1.org/cbv/",
    "gs1": GS1_VOC_WEB,
    "cbvmda": "urn:epcglobal:cbv:mda",
    "epcis": "https://ref.gs1.org/epcis/",
}

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NUMBER_START = frozenset("0123456789+-.")
_CURIE = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):(.+)", re.ASCII | re.DOTALL)

_QUANTITY_FIELDS = ("epcClass", "quantity", "uom")
_METADATA_FIELDS = ("time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData",
                    "dataProcessingMethod", "bizRules")
_REPORT_FIELDS = ("type", "exception", "deviceID", "deviceMetadata", "rawData",
                  "dataProcessingMethod", "time", "microorganism", "chemicalSubstance", "value",
                  "component", "stringValue", "booleanValue", "hexBinaryValue", "uriValue",
                  "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom",
                  "coordinateReferenceSystem")
_TIME_FIELDS = frozenset({"time", "startTime", "endTime"})
# JSON-LD comments play the part of XML comments, which never reach the hash.
_CONTEXT_ONLY = frozenset({"@context", "rdfs:comment"})
_LOCATION_STANDARD = frozenset({"id"}) | _CONTEXT_ONLY
_ELEMENT_STANDARD = frozenset({"sensorMetadata", "sensorReport"}) | _CONTEXT_ONLY
_METADATA_STANDARD = frozenset(_METADATA_FIELDS) | _CONTEXT_ONLY
_REPORT_STANDARD = frozenset(_REPORT_FIELDS) | _CONTEXT_ONLY
_REPORT_VOCAB: dict[str, Vocabulary] = {"type": MEASUREMENT_TYPE, "exception": SENSOR_ALERT_TYPE,
                                        "component": COMPONENT}
_EPC_LISTS = ("epcList", "parentID", "inputEPCList", "childEPCs", "quantityList",
              "childQuantityList", "inputQuantityList", "outputEPCList", "outputQuantityList")

#: Event fields the hash leaves out (CBV 2.0 section 8.9) or handles in its fixed order.
_EXCLUDED = frozenset({"type", "recordTime", "eventID", "errorDeclaration", "certificationInfo",
                       "@context", "rdfs:comment"})
_ORDERED = frozenset({"eventTime", "eventTimeZoneOffset", *_EPC_LISTS, "action",
                      "transformationID", "bizStep", "disposition", "persistentDisposition",
                      "readPoint", "bizLocation", "bizTransactionList", "sourceList",
                      "destinationList", "sensorElementList", "ilmd"})
_EVENT_STANDARD = _EXCLUDED | _ORDERED


def canonical_time(text: str) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` in UTC, rounded half-up to the millisecond.

    Text that is not an RFC 3339 date-time with a time zone is returned stripped.
    """
    text = text.strip()
    m = _TIME.fullmatch(text)
    if not m:
        return text
    frac = m.group(7) or ""
    try:
        # fromisoformat (Python 3.11) reads any number of fraction digits, keeping six.
        iso = text.upper()  # RFC 3339 allows t and z; fromisoformat wants T and Z
        moment = datetime.fromisoformat(iso[: m.start(7) + 6] + iso[m.start(8):]
                                        if len(frac) > 6 else iso)
        if moment.tzinfo is None:
            return text
        # Half-up on the 4th fraction digit is the same as on the dropped microseconds.
        sub = moment.microsecond % 1000
        moment = moment - timedelta(microseconds=sub)
        if sub >= 500:
            moment += timedelta(milliseconds=1)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return text
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def canonical_number(value: object) -> str:
    """A number without trailing zeros or exponent: ``26.0`` -> ``26``, ``1E3`` -> ``1000``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite() or abs(number.adjusted()) > 100:
        return text
    if number == 0:
        return "0"
    return format(number.normalize(), "f")


def _expand_curie(text: str, namespaces: Mapping[str, str]) -> str:
    m = _CURIE.fullmatch(text)
    if m and not m.group(2).startswith("//"):
        iri = namespaces.get(m.group(1))
        if iri is not None:
            return iri + m.group(2)
    return text


def canonical_value(value: object, namespaces: Mapping[str, str]) -> str:
    """A scalar in its hash spelling (CBV 2.0 section 8.9 rules 5-7, 14, 15, 17, 18)."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return canonical_number(value)
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if text.startswith(("urn:epc:", "http://", "https://")):
        return canonical_identifier(text) if is_uri(text) else text
    if text.startswith("urn:epcglobal:cbv:"):
        for urn, web in URN_TO_WEB:
            if text.startswith(urn):
                return web + text[len(urn):]
        return text
    if text[:1] in _NUMBER_START and _NUMBER.fullmatch(text):
        return canonical_number(text)
    if ":" in text:
        text = _expand_curie(text, namespaces)
        if text.startswith(("urn:epc:", "http://", "https://")) and is_uri(text):
            return canonical_identifier(text)
    return text


def _vocab_value(value: object, vocab: Vocabulary, namespaces: Mapping[str, str]) -> str:
    if isinstance(value, str):
        term = vocab.short(value.strip())
        if term is not None:
            return vocab.web_uri(term)
    return canonical_value(value, namespaces)


def expand_key(key: str, namespaces: Mapping[str, str]) -> str:
    """``prefix:local`` -> ``{namespace}local``; a full IRI is split at its last / or #."""
    m = _CURIE.fullmatch(key)
    if m is None:
        return key
    prefix, local = m.groups()
    iri = namespaces.get(prefix)
    if iri is not None and not local.startswith("//"):
        return "{" + iri + "}" + local
    cut = max(key.rfind("/"), key.rfind("#"))
    if cut > 0 and cut < len(key) - 1 and ("://" in key or key.startswith("urn:")):
        return "{" + key[: cut + 1] + "}" + key[cut + 1:]
    return key


def _with_context(obj: Mapping[str, Any], namespaces: Mapping[str, str]) -> Mapping[str, str]:
    ctx = obj.get("@context")
    if ctx is None:
        return namespaces
    extra = context_prefixes(ctx)
    if not extra:
        return namespaces
    merged = dict(namespaces)
    merged.update(extra)
    return merged


def context_prefixes(context: object) -> dict[str, str]:
    """Prefix -> namespace IRI declared by a JSON-LD ``@context`` value (string, map or list)."""
    found: dict[str, str] = {}
    items = context if isinstance(context, list) else [context]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, val in item.items():
            if not isinstance(key, str) or key.startswith("@"):
                continue
            if isinstance(val, dict):
                val = val.get("@id")
            if isinstance(val, str) and val:
                found[key] = val
    return found


def _extension(name: str, value: object, namespaces: Mapping[str, str],
               out: list[str], depth: int = 0) -> None:
    if depth > 64:
        return
    if isinstance(value, list):
        for item in value:
            _extension(name, item, namespaces, out, depth + 1)
    elif isinstance(value, dict):
        inner = _with_context(value, namespaces)
        children: list[str] = []
        for key, val in value.items():
            if isinstance(key, str) and key not in _CONTEXT_ONLY:
                _extension(expand_key(key, inner), val, inner, children, depth + 1)
        children.sort()
        out.append(name + "".join(children))
    else:
        text = canonical_value(value, namespaces)
        out.append(name + "=" + text if text else name)


def _extensions(obj: Mapping[str, Any], standard: frozenset[str],
                namespaces: Mapping[str, str]) -> list[str]:
    """Sorted pre-hash strings of the fields of ``obj`` not in ``standard`` (which must
    include ``@context``)."""
    out: list[str] = []
    for key, val in obj.items():
        if key not in standard and isinstance(key, str):
            _extension(expand_key(key, namespaces), val, namespaces, out)
    out.sort()
    return out


def _ids(values: object, namespaces: Mapping[str, str]) -> list[str]:
    if not isinstance(values, list):
        return []
    out = [canonical_value(v, namespaces) for v in values]
    return sorted("epc=" + v for v in out if v)


def _quantities(values: object, namespaces: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    if not isinstance(values, list):
        return out
    for element in values:
        if not isinstance(element, dict):
            continue
        text = "".join(f"{f}={v}" for f in _QUANTITY_FIELDS
                       if f in element and (v := canonical_value(element[f], namespaces)))
        if text:
            out.append("quantityElement" + text)
    out.sort()
    return out


def _typed_list(values: object, id_field: str, vocab: Vocabulary,
                namespaces: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    if not isinstance(values, list):
        return out
    for element in values:
        if not isinstance(element, dict):
            continue
        text = ""
        if "type" in element and (t := _vocab_value(element["type"], vocab, namespaces)):
            text = "type=" + t
        if id_field in element and (v := canonical_value(element[id_field], namespaces)):
            text += f"{id_field}={v}"
        if text:
            out.append(text)
    out.sort()
    return out


def _fields(obj: Mapping[str, Any], order: tuple[str, ...],
            namespaces: Mapping[str, str]) -> str:
    text = ""
    for name in order:
        if name not in obj:
            continue
        raw = obj[name]
        if name in _TIME_FIELDS and isinstance(raw, str):
            value = canonical_time(raw)
        elif name in _REPORT_VOCAB and order is _REPORT_FIELDS:
            value = _vocab_value(raw, _REPORT_VOCAB[name], namespaces)
        else:
            value = canonical_value(raw, namespaces)
        if value:
            text += f"{name}={value}"
    return text


def _sensor_elements(values: object, namespaces: Mapping[str, str]
                     ) -> tuple[list[str], list[str]]:
    """(ordered strings, trailing-block strings of their user extensions)."""
    ordered: list[str] = []
    trailing: list[str] = []
    if not isinstance(values, list):
        return ordered, trailing
    for element in values:
        if not isinstance(element, dict):
            continue
        ns = _with_context(element, namespaces)
        text = ""
        leftovers: list[str] = _extensions(element, _ELEMENT_STANDARD, ns)
        meta = element.get("sensorMetadata")
        if isinstance(meta, dict):
            mns = _with_context(meta, ns)
            fields = _fields(meta, _METADATA_FIELDS, mns)
            if fields:
                text += "sensorMetadata" + fields
            ext = _extensions(meta, _METADATA_STANDARD, mns)
            if ext:
                leftovers.append("sensorMetadata" + "".join(ext))
        reports = element.get("sensorReport")
        report_texts: list[str] = []
        if isinstance(reports, list):
            for report in reports:
                if not isinstance(report, dict):
                    continue
                rns = _with_context(report, ns)
                fields = _fields(report, _REPORT_FIELDS, rns)
                if fields:
                    report_texts.append("sensorReport" + fields)
                ext = _extensions(report, _REPORT_STANDARD, rns)
                if ext:
                    leftovers.append("sensorReport" + "".join(ext))
        report_texts.sort()
        text += "".join(report_texts)
        if text:
            ordered.append("sensorElement" + text)
        if leftovers:
            leftovers.sort()
            trailing.append("sensorElement" + "".join(leftovers))
    ordered.sort()
    return ordered, trailing


def _location(name: str, value: object, namespaces: Mapping[str, str],
              trailing: list[str]) -> str:
    if not isinstance(value, dict):
        return ""
    ns = _with_context(value, namespaces)
    ext = _extensions(value, _LOCATION_STANDARD, ns)
    if ext:
        trailing.append(name + "".join(ext))
    ident = canonical_value(value.get("id"), ns)
    return f"{name}id={ident}" if ident else ""


def prehash_string(event: Mapping[str, Any],
                   namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of one event.

    ``namespaces`` maps the prefixes declared by the enclosing document's
    ``@context`` to their IRIs; the event's own ``@context`` is added to them.
    """
    ns: Mapping[str, str] = dict(STANDARD_NAMESPACES)
    if namespaces:
        ns = {**ns, **namespaces}
    ns = _with_context(event, ns)
    parts: list[str] = ["eventType=" + canonical_value(event.get("type"), {})]
    trailing: list[str] = []

    def scalar(name: str, value: str) -> None:
        if value:
            parts.append(f"{name}={value}")

    if isinstance(event.get("eventTime"), str):
        scalar("eventTime", canonical_time(event["eventTime"]))
    scalar("eventTimeZoneOffset", canonical_value(event.get("eventTimeZoneOffset"), {}))
    for name in _EPC_LISTS:
        if name not in event:
            continue
        if name == "parentID":
            scalar(name, canonical_value(event[name], ns))
            continue
        items = (_quantities(event[name], ns) if name.endswith("QuantityList")
                 or name == "quantityList" else _ids(event[name], ns))
        if items:
            parts.append(name + "".join(items))
    scalar("action", canonical_value(event.get("action"), ns))
    scalar("transformationID", canonical_value(event.get("transformationID"), ns))
    if "bizStep" in event:
        scalar("bizStep", _vocab_value(event["bizStep"], BIZ_STEP, ns))
    if "disposition" in event:
        scalar("disposition", _vocab_value(event["disposition"], DISPOSITION, ns))
    pd = event.get("persistentDisposition")
    if isinstance(pd, dict):
        text = ""
        for op in ("set", "unset"):
            values = pd.get(op)
            if isinstance(values, list):
                items = sorted(f"{op}={v}" for x in values
                               if (v := _vocab_value(x, DISPOSITION, ns)))
                text += "".join(items)
        if text:
            parts.append("persistentDisposition" + text)
    for name in ("readPoint", "bizLocation"):
        if name in event:
            loc = _location(name, event[name], ns, trailing)
            if loc:
                parts.append(loc)
    for name, id_field, vocab in (("bizTransactionList", "bizTransaction", BIZ_TRANSACTION_TYPE),
                                  ("sourceList", "source", SOURCE_DESTINATION_TYPE),
                                  ("destinationList", "destination", SOURCE_DESTINATION_TYPE)):
        if name in event:
            items = _typed_list(event[name], id_field, vocab, ns)
            if items:
                parts.append(name + "".join(items))
    if "sensorElementList" in event:
        ordered, sensor_trailing = _sensor_elements(event["sensorElementList"], ns)
        parts.extend(ordered)
        trailing.extend(sensor_trailing)
    ilmd = event.get("ilmd")
    if isinstance(ilmd, dict):
        items = _extensions(ilmd, _CONTEXT_ONLY, _with_context(ilmd, ns))
        if items:
            parts.append("ilmd" + "".join(items))
    trailing.extend(_extensions(event, _EVENT_STANDARD, ns))
    trailing.sort()
    parts.extend(trailing)
    return "".join(parts)


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 event hash ID ``ni:///sha-256;<hex>?ver=CBV2.0`` of one event."""
    digest = hashlib.sha256(prehash_string(event, namespaces).encode("utf-8",
                                                                     "surrogatepass"))
    return f"ni:///sha-256;{digest.hexdigest()}?ver={HASH_VERSION}"
