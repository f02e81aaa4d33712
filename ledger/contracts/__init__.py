"""Contracts, one module per record family (ARCHITECTURE decision 6).

Importing this package registers every family's contracts in ``REGISTRY``.
"""

from ledger.contracts.base import (
    REGISTRY,
    ROLES,
    ContractSpec,
    Keys,
    Payload,
    TxContext,
    WireDate,
    WireTime,
    contract,
    parse_payload,
)
from ledger.contracts import membership  # noqa: E402  (registers its contracts)
from ledger.contracts import trade  # noqa: E402

__all__ = [
    "REGISTRY",
    "ROLES",
    "ContractSpec",
    "Keys",
    "Payload",
    "TxContext",
    "WireDate",
    "WireTime",
    "contract",
    "membership",
    "parse_payload",
    "trade",
]
