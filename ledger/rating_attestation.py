"""Rating attestations: a node's signed statement of a buyer's rating (specs/ratings.md#attestation).

An attestation is what a supplier keeps as evidence of the check it made:

    {"version": "tradeledger-rating-attestation/1",
     "statement": {...}, "signature": "<hex>",
     "header": <the block header the rating was read at>,
     "certificate": <that header's finality certificate>}

The statement names the chain, the buyer, the rating's outcome, factors and
trend, the as-of date and height, the header's hash, and the signing node
key (id and organisation). The signature is Ed25519 over
``Domain.ATTESTATION || canonical(statement)``. ``client.verify`` checks an
attestation offline against the genesis file alone.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.block import BlockHeader, Certificate
from ledger.encoding import canonical
from ledger.keys import Domain, SigningKey
from ledger.ratings import Insufficient, Rating

VERSION: Final = "tradeledger-rating-attestation/1"
STATEMENT_FIELDS: Final = (
    "version", "chain_id", "genesis_hash", "buyer", "status", "score", "band", "invoices",
    "suppliers", "reason", "factors", "trend", "policy", "as_of", "height", "header_hash",
    "org", "key_id",
)


def statement(result: Rating | Insufficient, header: BlockHeader, *, genesis_hash: bytes,
              org: str, key_id: str) -> dict[str, Any]:
    """The statement a node signs for ``result``, read at ``header``.

    ``result`` must have been computed over the state at ``header`` with the
    header's date as ``as_of``; a mismatch is a bug in the caller.
    """
    if result.height != header.height or result.as_of != header.time.date():
        raise ValueError(f"rating at height {result.height} as of {result.as_of} is not "
                         f"the state of header {header.height} ({header.time.date()})")
    wire = result.to_wire()
    rated = isinstance(result, Rating)
    return {
        "version": VERSION,
        "chain_id": header.chain_id,
        "genesis_hash": genesis_hash.hex(),
        "buyer": result.buyer,
        "status": wire["status"],
        "score": wire["score"] if rated else None,
        "band": wire["band"] if rated else None,
        "invoices": result.factors.invoices if isinstance(result, Rating) else result.invoices,
        "suppliers": (result.factors.suppliers if isinstance(result, Rating)
                      else result.suppliers),
        "reason": "" if rated else wire["reason"],
        "factors": wire["factors"] if rated else None,
        "trend": wire["trend"],
        "policy": wire["policy"],
        "as_of": wire["as_of"],
        "height": header.height,
        "header_hash": header.hash.hex(),
        "org": org,
        "key_id": key_id,
    }


def signing_message(stmt: dict[str, Any]) -> bytes:
    """The bytes signed (after the domain prefix): the RFC 8785 statement."""
    return canonical(stmt)


def attest(result: Rating | Insufficient, header: BlockHeader, certificate: Certificate, *,
           genesis_hash: bytes, key: SigningKey, org: str) -> dict[str, Any]:
    """A signed attestation of ``result`` by the node key ``key`` of ``org``."""
    if certificate.height != header.height or certificate.block_hash != header.hash:
        raise ValueError("the certificate is not for this header")
    stmt = statement(result, header, genesis_hash=genesis_hash, org=org, key_id=key.key_id)
    return {
        "version": VERSION,
        "statement": stmt,
        "signature": key.sign(Domain.ATTESTATION, signing_message(stmt)).hex(),
        "header": header.to_wire(),
        "certificate": certificate.to_wire(),
    }
