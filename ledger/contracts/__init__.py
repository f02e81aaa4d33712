"""Contracts, one module per record family (ARCHITECTURE decision 6).

Importing this package registers every family's contracts in ``REGISTRY``.
"""

# Importing the family modules registers their contracts.
from ledger.contracts import membership, ratings, shipments, trade
from ledger.contracts.base import (
    INDEXERS,
    PUBLIC_PARTY,
    REGISTRY,
    ROLES,
    ContractSpec,
    Keys,
    Payload,
    TxContext,
    WireDate,
    WireTime,
    contract,
    indexer,
    parse_payload,
)

__all__ = [
    "INDEXERS",
    "PUBLIC_PARTY",
    "REGISTRY",
    "ROLES",
    "ContractSpec",
    "Keys",
    "Payload",
    "TxContext",
    "WireDate",
    "WireTime",
    "contract",
    "indexer",
    "membership",
    "parse_payload",
    "ratings",
    "shipments",
    "trade",
]
