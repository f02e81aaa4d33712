"""GS1 EPCIS 2.0 validation and normalisation for shipment scans (pure: no I/O, no clock).

Public API::

    validate_document(doc) -> list[Event]     # EPCISDocument, EPCISQueryDocument or one event
    normalise_epc(identifier) -> str          # EPC URN / Digital Link -> canonical key
    event_hash(event, namespaces=None) -> str # CBV 2.0 event hash ID
    prehash_string(event, namespaces=None) -> str
    normalise_biz_step(value) -> str, normalise_disposition(value) -> str

Errors are :class:`ledger.errors.MalformedRecord` with ``field`` (a JSON path) and
``rule``. The rules and normal forms are specified in ``specs/epcis.md``.
"""

from ledger.epcis.hashing import canonical_time, event_hash, prehash_string
from ledger.epcis.identifiers import gs1_check_digit, normalise_epc
from ledger.epcis.model import (
    BizTransaction,
    ErrorDeclaration,
    Event,
    QuantityElement,
    SourceDestination,
)
from ledger.epcis.validate import EVENT_TYPES, validate_document
from ledger.epcis.vocab import (
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ERROR_REASONS,
    SOURCE_DESTINATION_TYPES,
    normalise_biz_step,
    normalise_disposition,
)

__all__ = [
    "BIZ_STEPS",
    "BIZ_TRANSACTION_TYPES",
    "DISPOSITIONS",
    "ERROR_REASONS",
    "EVENT_TYPES",
    "SOURCE_DESTINATION_TYPES",
    "BizTransaction",
    "ErrorDeclaration",
    "Event",
    "QuantityElement",
    "SourceDestination",
    "canonical_time",
    "event_hash",
    "gs1_check_digit",
    "normalise_biz_step",
    "normalise_disposition",
    "normalise_epc",
    "prehash_string",
    "validate_document",
]
