"""TradeLedger client: SDK, offline proof verification, CLI (``tradeledger``)."""

from client.sdk import AsyncClient, Client, NodeError, RequestSigner, TxBuilder, new_nonce
from client.verify import (
    BundleError,
    VerifiedRecord,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)

__all__ = [
    "AsyncClient",
    "BundleError",
    "Client",
    "NodeError",
    "RequestSigner",
    "TxBuilder",
    "VerifiedRecord",
    "new_nonce",
    "verify_consistency_bundle",
    "verify_inclusion_bundle",
]
