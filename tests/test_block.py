"""Block headers, checkpoints and finality certificates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ledger.block import (
    BlockHeader,
    Certificate,
    ValidatorSet,
    finality_result,
    sign_checkpoint,
    verify_certificate,
)
from ledger.errors import MalformedRecord, VerificationError
from ledger.keys import Domain, SigningKey

KEYS = {org: SigningKey(bytes([i + 1]) * 32) for i, org in enumerate(["bank-a", "bank-b",
                                                                       "platform"])}
VALIDATORS = ValidatorSet({org: {k.key_id: k.public_key} for org, k in KEYS.items()}, 2)
HEADER = BlockHeader(chain_id="test-chain", height=7, prev_hash=b"\x01" * 32, log_size=42,
                     log_root=b"\x02" * 32, state_root=b"\x03" * 32,
                     time=datetime(2026, 3, 1, tzinfo=UTC), proposer="ab" * 16)


def _cert(*orgs: str, header: BlockHeader = HEADER) -> Certificate:
    return Certificate(header.height, header.hash,
                       tuple(sign_checkpoint(header, KEYS[o], o) for o in orgs))


def test_header_round_trips_and_hashes_canonically() -> None:
    again = BlockHeader.from_wire(HEADER.to_wire())
    assert again == HEADER and again.hash == HEADER.hash
    assert HEADER.canonical_bytes().startswith(b'{"chain_id":"test-chain","height":7,')


def test_quorum_of_validator_orgs_makes_a_block_final() -> None:
    verify_certificate(HEADER, _cert("bank-a", "platform"), VALIDATORS)
    result = finality_result(HEADER, _cert("bank-a"), VALIDATORS)
    assert result.signed == ("bank-a",) and result.missing == ("bank-b", "platform")
    assert not result.final


def test_one_signature_short_is_not_final_and_says_so() -> None:
    with pytest.raises(VerificationError, match=r"1/2 required"):
        verify_certificate(HEADER, _cert("bank-a"), VALIDATORS)


def test_the_same_org_twice_counts_once() -> None:
    sig = sign_checkpoint(HEADER, KEYS["bank-a"], "bank-a")
    cert = Certificate(HEADER.height, HEADER.hash, (sig, sig))
    with pytest.raises(VerificationError):
        verify_certificate(HEADER, cert, VALIDATORS)


def test_certificate_for_another_header_fails() -> None:
    other = replace(HEADER, state_root=b"\x04" * 32)
    with pytest.raises(VerificationError):
        verify_certificate(HEADER, _cert("bank-a", "bank-b", header=other), VALIDATORS)


def test_a_transaction_signature_cannot_stand_in_for_a_checkpoint() -> None:
    key = KEYS["bank-a"]
    forged = replace(sign_checkpoint(HEADER, key, "bank-a"),
                     signature=key.sign(Domain.TX, HEADER.hash))
    cert = Certificate(HEADER.height, HEADER.hash,
                       (forged, sign_checkpoint(HEADER, KEYS["bank-b"], "bank-b")))
    result = finality_result(HEADER, cert, VALIDATORS)
    assert result.signed == ("bank-b",) and "bank-a" in result.invalid


def test_signature_by_a_non_validator_key_does_not_count() -> None:
    outsider = SigningKey(bytes([9]) * 32)
    cert = Certificate(HEADER.height, HEADER.hash, (
        sign_checkpoint(HEADER, outsider, "bank-a"),
        sign_checkpoint(HEADER, KEYS["bank-b"], "bank-b")))
    assert not finality_result(HEADER, cert, VALIDATORS).final


def test_certificate_wire_round_trip() -> None:
    cert = _cert("bank-a", "bank-b")
    assert Certificate.from_wire(cert.to_wire()) == cert


def test_threshold_must_be_reachable() -> None:
    with pytest.raises(MalformedRecord):
        ValidatorSet({"a": {}}, 2)


def test_malformed_header_names_the_field() -> None:
    wire = HEADER.to_wire()
    wire["height"] = -1
    with pytest.raises(MalformedRecord) as info:
        BlockHeader.from_wire(wire)
    assert info.value.field == "header.height"
