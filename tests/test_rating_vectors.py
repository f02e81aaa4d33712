"""specs/vectors/rating.json: rating attestations a second implementation must accept or refuse.

(``tests/test_vectors.py`` checks that the file is what the generator writes.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.verify import BundleError, load_anchor, verify_rating_attestation
from ledger.block import BlockHeader, Certificate, verify_certificate
from ledger.chain import Genesis
from ledger.contracts.membership import validator_set
from ledger.encoding import canonical, loads
from ledger.keys import Domain, verify
from ledger.rating_attestation import STATEMENT_FIELDS, VERSION
from ledger.state import MemoryState

DOC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "specs" / "vectors" / "rating.json")
    .read_text(encoding="utf-8"))
GENESIS = DOC["genesis"].encode("utf-8")


def _cases(key: str) -> list[Any]:
    return [pytest.param(c, id=c["desc"]) for c in DOC[key]]


def test_the_file_has_provenance_and_uniquely_named_cases() -> None:
    assert DOC["description"] and DOC["provenance"]
    for key in ("attestations", "bad"):
        descs = [c["desc"] for c in DOC[key]]
        assert descs and len(set(descs)) == len(descs)
    assert bytes.fromhex(DOC["signing_domain"]) == Domain.ATTESTATION.value


@pytest.mark.parametrize("case", _cases("attestations"))
def test_attestation_verifies_and_the_ledger_agrees(case: dict[str, Any]) -> None:
    raw = case["attestation_canonical"].encode("utf-8")
    verified = verify_rating_attestation(GENESIS, raw)
    want = case["verified"]
    assert (verified.buyer, verified.status, verified.score, verified.band, verified.height,
            verified.as_of, list(verified.certified_by)) == (
        want["buyer"], want["status"], want["score"], want["band"], want["height"],
        want["as_of"], want["certified_by"])
    # The ledger's own encoder, keys and certificate check give the same answer.
    doc = loads(raw)
    assert canonical(doc) == raw and doc["version"] == VERSION
    stmt = doc["statement"]
    assert tuple(stmt) == tuple(sorted(STATEMENT_FIELDS))
    assert canonical(stmt) == case["statement_canonical"].encode("utf-8")
    assert bytes.fromhex(case["signing_message"]) == Domain.ATTESTATION.value + canonical(stmt)
    genesis = Genesis.from_bytes(GENESIS)
    public = load_anchor(GENESIS).org_node_keys[stmt["org"]][stmt["key_id"]]
    verify(public, Domain.ATTESTATION, canonical(stmt), bytes.fromhex(doc["signature"]))
    header = BlockHeader.from_wire(doc["header"])
    assert header.hash.hex() == stmt["header_hash"]
    state = MemoryState({k: v for k, v in genesis.state_writes.items() if v is not None})
    verify_certificate(header, Certificate.from_wire(doc["certificate"]),
                       validator_set(state))


@pytest.mark.parametrize("case", _cases("bad"))
def test_falsified_attestation_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(BundleError) as info:
        verify_rating_attestation(GENESIS, case["attestation_canonical"].encode("utf-8"))
    assert case["expected"]["error_contains"] in str(info.value)
