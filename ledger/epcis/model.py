"""The normalised view of one accepted EPCIS event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class QuantityElement:
    """One entry of a quantity list. ``list_name`` says which list it came from
    (``quantityList``, ``childQuantityList``, ``inputQuantityList``, ``outputQuantityList``)."""

    list_name: str
    epc_class: str  # canonical key, see normalise_epc
    quantity: float | None
    uom: str | None


@dataclass(frozen=True, slots=True)
class BizTransaction:
    """A business transaction; ``type`` is the bare CBV name when standard."""

    type: str | None
    value: str  # canonical key (EPC URNs become Digital Link; other URIs unchanged)


@dataclass(frozen=True, slots=True)
class SourceDestination:
    """A source or destination; ``type`` is the bare CBV name when standard."""

    type: str
    value: str  # canonical key


@dataclass(frozen=True, slots=True)
class ErrorDeclaration:
    declaration_time: datetime  # UTC
    reason: str | None  # bare CBV name when standard
    corrective_event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """An EPCIS 2.0 event that passed validation, in TradeLedger's normal form.

    Identifiers (``epcs``, ``parent_id``, ``read_point`` ...) are canonical keys:
    the constrained GS1 Digital Link URI for GS1 keys, the URI unchanged otherwise.
    ``raw`` is the event object exactly as received (not copied; do not mutate it).
    """

    event_type: str
    event_id: str
    event_id_is_hash: bool  # True when event_id is the computed CBV 2.0 event hash
    event_time: datetime  # UTC
    event_time_zone_offset: str
    record_time: datetime | None
    action: str | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    parent_id: str | None
    epc_list: tuple[str, ...]
    child_epcs: tuple[str, ...]
    input_epcs: tuple[str, ...]
    output_epcs: tuple[str, ...]
    epcs: tuple[str, ...]  # every instance identifier above, in order, without repeats
    quantities: tuple[QuantityElement, ...]
    epc_classes: tuple[str, ...]  # the classes of ``quantities``, without repeats
    transformation_id: str | None
    biz_transactions: tuple[BizTransaction, ...]
    source_list: tuple[SourceDestination, ...]
    destination_list: tuple[SourceDestination, ...]
    error_declaration: ErrorDeclaration | None
    # JSON-LD prefixes declared around the event (document @context), prefix -> IRI;
    # ``event_hash(raw, dict(namespaces))`` recomputes the hash of ``raw``.
    namespaces: tuple[tuple[str, str], ...] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)
