"""Block headers, checkpoints and finality certificates (specs/protocol.md#blocks).

A header is ``{chain_id, height, prev_hash, log_size, log_root, state_root,
time, proposer}``; ``block_hash = SHA-256(canonical(header))``. A checkpoint is
a validator node's signature over ``"tradeledger/v1/checkpoint\\x00" ||
block_hash``. A finality certificate gathers checkpoints; it is final once it
holds valid signatures from ``threshold`` distinct validator organisations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.encoding import canonical, canonical_pairs
from ledger.errors import MalformedRecord, VerificationError
from ledger.hashing import ZERO_HASH, parse_hash, parse_hex, sha256
from ledger.keys import SIGNATURE_SIZE, Domain, SigningKey, is_valid
from ledger.timefmt import format_time, parse_time
from ledger.tx import CHAIN_ID_RE, KEY_ID_RE, _exact_members, _object, _string

_HEADER_FIELDS = (
    "chain_id", "height", "prev_hash", "log_size", "log_root", "state_root", "time", "proposer",
)


def _nonneg_int(value: object, path: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedRecord("must be a non-negative integer", field=path, rule="uint")
    return value


@dataclass(frozen=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    log_size: int
    log_root: bytes
    state_root: bytes
    time: datetime
    proposer: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash.hex(),
            "log_size": self.log_size,
            "log_root": self.log_root.hex(),
            "state_root": self.state_root.hex(),
            "time": format_time(self.time),
            "proposer": self.proposer,
        }

    def canonical_bytes(self) -> bytes:
        return canonical(self.to_wire())

    @property
    def hash(self) -> bytes:
        return sha256(self.canonical_bytes())

    @classmethod
    def from_wire(cls, wire: object, *, path: str = "header") -> BlockHeader:
        obj = _object(wire, path)
        _exact_members(obj, _HEADER_FIELDS, path)
        return cls(
            chain_id=_string(obj["chain_id"], f"{path}.chain_id", CHAIN_ID_RE, "a chain id"),
            height=_nonneg_int(obj["height"], f"{path}.height"),
            prev_hash=parse_hash(obj["prev_hash"], field=f"{path}.prev_hash"),
            log_size=_nonneg_int(obj["log_size"], f"{path}.log_size"),
            log_root=parse_hash(obj["log_root"], field=f"{path}.log_root"),
            state_root=parse_hash(obj["state_root"], field=f"{path}.state_root"),
            time=parse_time(obj["time"], field=f"{path}.time"),
            proposer=_string(obj["proposer"], f"{path}.proposer", KEY_ID_RE, "a key id"),
        )


def genesis_prev_hash() -> bytes:
    return ZERO_HASH


@dataclass(frozen=True)
class CheckpointSignature:
    """One validator node's signature on a block hash."""

    org: str
    key_id: str
    signature: bytes

    def to_wire(self) -> dict[str, str]:
        return {"org": self.org, "key_id": self.key_id, "signature": self.signature.hex()}

    @classmethod
    def from_wire(cls, wire: object, *, path: str) -> CheckpointSignature:
        obj = _object(wire, path)
        _exact_members(obj, ("org", "key_id", "signature"), path)
        org = obj["org"]
        if not isinstance(org, str) or not org:
            raise MalformedRecord("must be an organisation id", field=f"{path}.org",
                                  rule="format")
        return cls(
            org=org,
            key_id=_string(obj["key_id"], f"{path}.key_id", KEY_ID_RE, "a key id"),
            signature=parse_hex(obj["signature"], field=f"{path}.signature",
                                size=SIGNATURE_SIZE),
        )


def sign_checkpoint(header: BlockHeader, key: SigningKey, org: str) -> CheckpointSignature:
    return CheckpointSignature(org, key.key_id, key.sign(Domain.CHECKPOINT, header.hash))


@dataclass(frozen=True)
class ValidatorSet:
    """Who signs checkpoints: node keys by organisation, and the quorum.

    ``node_keys`` maps an organisation id to its node public keys by key id.
    """

    node_keys: Mapping[str, Mapping[str, bytes]]
    threshold: int

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= len(self.node_keys):
            raise MalformedRecord(
                f"threshold {self.threshold} must be between 1 and {len(self.node_keys)} "
                "validator organisations",
                field="quorum.threshold",
                rule="range",
            )


@dataclass(frozen=True)
class FinalityResult:
    """Diagnostics of a certificate: which validators signed, which are missing."""

    signed: tuple[str, ...]
    missing: tuple[str, ...]
    invalid: tuple[str, ...]
    threshold: int

    @property
    def final(self) -> bool:
        return len(self.signed) >= self.threshold


@dataclass(frozen=True)
class Certificate:
    """A finality certificate: checkpoint signatures on one block hash."""

    height: int
    block_hash: bytes
    signatures: tuple[CheckpointSignature, ...] = field(default=())

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "signatures": [s.to_wire() for s in self.signatures],
        }

    @classmethod
    def from_wire(cls, wire: object, *, path: str = "certificate") -> Certificate:
        obj = _object(wire, path)
        _exact_members(obj, ("height", "block_hash", "signatures"), path)
        sigs = obj["signatures"]
        if not isinstance(sigs, list):
            raise MalformedRecord("must be a list", field=f"{path}.signatures", rule="list")
        return cls(
            height=_nonneg_int(obj["height"], f"{path}.height"),
            block_hash=parse_hash(obj["block_hash"], field=f"{path}.block_hash"),
            signatures=tuple(
                CheckpointSignature.from_wire(s, path=f"{path}.signatures[{i}]")
                for i, s in enumerate(sigs)
            ),
        )


def finality_result(
    header: BlockHeader, certificate: Certificate, validators: ValidatorSet
) -> FinalityResult:
    """Check each signature without raising; see :func:`verify_certificate`."""
    block_hash = header.hash
    signed: list[str] = []
    invalid: list[str] = []
    for sig in certificate.signatures:
        keys = validators.node_keys.get(sig.org, {})
        public = keys.get(sig.key_id)
        if (
            certificate.block_hash == block_hash
            and public is not None
            and sig.org not in signed
            and is_valid(public, Domain.CHECKPOINT, block_hash, sig.signature)
        ):
            signed.append(sig.org)
        elif sig.org not in signed:
            invalid.append(sig.org)
    missing = tuple(org for org in sorted(validators.node_keys) if org not in signed)
    return FinalityResult(tuple(signed), missing, tuple(invalid), validators.threshold)


def verify_certificate(
    header: BlockHeader, certificate: Certificate, validators: ValidatorSet
) -> None:
    """Raise :class:`VerificationError` unless the certificate makes ``header`` final."""
    if certificate.height != header.height:
        raise VerificationError(
            f"certificate is for height {certificate.height}, header is {header.height}",
            code="bad_certificate",
        )
    if certificate.block_hash != header.hash:
        raise VerificationError(
            "certificate signs a different block hash than the header's",
            code="bad_certificate",
        )
    result = finality_result(header, certificate, validators)
    if not result.final:
        raise VerificationError(
            f"certificate signed by {len(result.signed)}/{validators.threshold} required "
            f"validator organisations (missing: {', '.join(result.missing) or 'none'}; "
            f"invalid: {', '.join(result.invalid) or 'none'})",
            code="not_final",
        )


def state_root_step(prev_state_root: bytes,
                    changes: Sequence[tuple[str, bytes | None]]) -> bytes:
    """Chain the state root: SHA-256(domain || prev || SHA-256(canonical(changes))).

    ``changes`` is the block's list of ``(key, value)`` writes sorted by key,
    each value the canonical bytes of a JSON value, or ``None`` for a
    deletion; the digest covers ``canonical([[key, value], ...])``.
    """
    digest = sha256(canonical_pairs(list(changes)))
    return sha256(b"tradeledger/v1/state\x00" + prev_state_root + digest)
