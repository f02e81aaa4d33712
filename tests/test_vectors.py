"""The protocol test vectors of specs/vectors/{tx,block,bundle}.json against the implementation.

Every byte string, hash and signature of a good case must be reproduced; every bad case must
be refused at the stated step, with the stated field and rule or code. Bundles are checked by
the offline verifier (client/verify.py) and, for the Merkle proofs, by ledger.merkle as well.

A case marked ``known_bug`` is a defect of the implementation reported against it: the
protocol requires the rejection and the code does not yet perform it. Such cases are strict
expected failures, so fixing the defect turns them into an error until the mark is dropped.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from client.verify import BundleError, verify_consistency_bundle, verify_inclusion_bundle
from ledger import merkle
from ledger.block import (
    BlockHeader,
    Certificate,
    ValidatorSet,
    finality_result,
    sign_checkpoint,
    state_root_step,
    verify_certificate,
)
from ledger.chain import Genesis, make_genesis
from ledger.contracts import REGISTRY, parse_payload
from ledger.encoding import canonical, canonical_pairs, loads
from ledger.errors import LedgerError, MalformedRecord, VerificationError
from ledger.executor import BlockContext, execute_block
from ledger.hashing import sha256
from ledger.keys import Domain, SigningKey, key_id
from ledger.state import MemoryState
from ledger.timefmt import parse_time
from ledger.tx import SignedTx, leaf_bytes, verify_tx_signatures

VECTORS = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


TX = _load("tx.json")
BLOCK = _load("block.json")
BUNDLE = _load("bundle.json")

KEYS: dict[str, SigningKey] = {k["label"]: SigningKey(bytes.fromhex(k["seed"]))
                               for k in TX["keys"]}
ENROLLED: dict[str, bytes] = {k["key_id"]: bytes.fromhex(k["public_key"])
                              for k in TX["keys"] if k["enrolled"]}
GENESIS = Genesis.from_wire(BLOCK["genesis"]["file"])


def cases(items: list[dict[str, Any]]) -> Any:
    """``parametrize`` arguments: one case per entry, named by its desc; known bugs xfail."""
    params = []
    for item in items:
        marks = []
        if item.get("known_bug"):
            marks.append(pytest.mark.xfail(reason=item["known_bug"], strict=True))
        params.append(pytest.param(item, id=item["desc"], marks=marks))
    return params


def test_every_file_has_provenance_and_named_cases() -> None:
    for doc in (TX, BLOCK, BUNDLE):
        assert doc["provenance"] and doc["description"]
    lists = [TX["valid"], TX["equivalent"], TX["bad"], TX["execution"],
             BLOCK["state_root_steps"], BLOCK["headers"], BLOCK["bad_headers"],
             BLOCK["bad_certificates"], BLOCK["bad_genesis"],
             BUNDLE["inclusion"], BUNDLE["consistency"], BUNDLE["bad"]]
    for entries in lists:
        assert entries
        descs = [e["desc"] for e in entries]
        assert len(set(descs)) == len(descs), "case names must be unique within a list"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tradeledger_vector_generator",
                                                  VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_files_are_what_the_generator_writes() -> None:
    generator = _generator()
    documents = generator.build()
    for name in generator.FILES:
        on_disk = (VECTORS / name).read_text(encoding="utf-8")
        assert generator.render(documents[name]) == on_disk, (
            f"{name} is stale or was edited by hand; run .venv/bin/python "
            "specs/vectors/generate.py")


# -- keys and domains (specs/protocol.md#keys-and-key-ids, #signing-domains) ---------------


@pytest.mark.parametrize("entry", TX["keys"], ids=lambda e: e["label"])
def test_key_from_seed(entry: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(entry["seed"]))
    assert key.public_key_hex == entry["public_key"]
    assert key.key_id == entry["key_id"] == key_id(bytes.fromhex(entry["public_key"]))
    assert entry["key_id"] == sha256(key.public_key)[:16].hex()


def test_domains_are_the_implementations() -> None:
    assert [(d["name"], d["prefix_hex"]) for d in TX["domains"]] == [
        (d.name.lower(), d.value.hex()) for d in Domain]
    for d in TX["domains"]:
        raw = bytes.fromhex(d["prefix_hex"])
        assert raw == f"tradeledger/v1/{d['name']}\x00".encode("ascii")


# -- transactions (specs/protocol.md#transactions) ------------------------------------------


@pytest.mark.parametrize("case", cases(TX["valid"]))
def test_valid_transaction_bytes(case: dict[str, Any]) -> None:
    tx = SignedTx.from_wire(case["wire"])
    assert tx.body_bytes == case["body_canonical"].encode("utf-8")
    assert canonical(case["wire"]["body"]) == tx.body_bytes
    assert tx.tx_id_hex == case["tx_id"] == sha256(tx.body_bytes).hex()
    message = Domain.TX.value + tx.tx_id
    assert case["signing_messages"] == [message.hex()] * len(tx.signatures)
    for label, sig, expected in zip(case["signers"], tx.signatures, case["signatures"],
                                    strict=True):
        key = KEYS[label]
        assert sig.key_id == key.key_id
        assert sig.signature.hex() == expected
        # Ed25519 (RFC 8032) is deterministic: signing again gives the same bytes.
        assert key.sign(Domain.TX, tx.tx_id).hex() == expected
    verify_tx_signatures(tx, ENROLLED)
    leaf = case["leaf"].encode("utf-8")
    assert tx.leaf_bytes() == leaf == leaf_bytes(tx.body_bytes, tx.signatures)
    assert leaf == canonical(json.loads(leaf))
    assert merkle.leaf_hash(leaf).hex() == case["leaf_hash"]
    assert sha256(b"\x00" + leaf).hex() == case["leaf_hash"]
    spec = REGISTRY[tx.body.type]
    parse_payload(spec.payload, tx.body.payload, path="body.payload")


@pytest.mark.parametrize("case", cases(TX["equivalent"]))
def test_equivalent_wire_texts_give_the_same_tx_id(case: dict[str, Any]) -> None:
    tx = SignedTx.from_bytes(case["text"].encode("utf-8"))
    assert tx.body_bytes.decode("utf-8") == case["body_canonical"]
    assert tx.tx_id_hex == case["tx_id"]
    verify_tx_signatures(tx, ENROLLED)


def _tx_stages(case: dict[str, Any]) -> dict[str, Any]:
    """Decode, wire, payload (node intake order), then signatures; the first refusal."""
    try:
        wire = loads(case["text"]) if "text" in case else case["wire"]
    except MalformedRecord as exc:
        return {"stage": "decode", "field": exc.field, "rule": exc.rule}
    try:
        tx = SignedTx.from_wire(wire)
    except MalformedRecord as exc:
        return {"stage": "wire", "field": exc.field, "rule": exc.rule}
    spec = REGISTRY.get(tx.body.type)
    if spec is None or tx.body.type == "membership.genesis":
        return {"stage": "payload", "field": "body.type", "rule": "known_type"}
    try:
        parse_payload(spec.payload, tx.body.payload, path="body.payload")
    except MalformedRecord as exc:
        return {"stage": "payload", "field": exc.field, "rule": exc.rule}
    try:
        verify_tx_signatures(tx, ENROLLED)
    except VerificationError as exc:
        return {"stage": "signature", "code": exc.code}
    return {"stage": "ok"}


@pytest.mark.parametrize("case", cases(TX["bad"]))
def test_bad_transaction_is_refused(case: dict[str, Any]) -> None:
    assert _tx_stages(case) == case["expected"]


@pytest.mark.parametrize("case", cases(TX["execution"]))
def test_execution_outcomes(case: dict[str, Any]) -> None:
    state = MemoryState(dict(GENESIS.state_writes))  # type: ignore[arg-type]
    txs = [SignedTx.from_wire(w) for w in case["txs"]]
    ctx = BlockContext(chain_id=GENESIS.chain_id, height=case["height"],
                       time=parse_time(case["block_time"], field="block_time"))
    result = execute_block(state, txs, ctx)
    refused = {id(r.tx): r.error.code for r in result.refused}
    assert [refused.get(id(t), "accepted") for t in txs] == case["expected"]


# -- genesis, headers, certificates (specs/protocol.md#genesis, #blocks) ----------------------


def test_genesis_is_reproduced_from_its_description() -> None:
    g = BLOCK["genesis"]
    built = make_genesis(g["description"], founder=KEYS[g["founder"]],
                         time=parse_time(g["time"], field="time"))
    assert built.to_bytes() == g["file_canonical"].encode("utf-8")
    assert canonical(g["file"]) == built.to_bytes()
    assert built.hash.hex() == g["hash"] == sha256(built.header.canonical_bytes()).hex()
    assert built.tx.tx_id_hex == g["tx_id"]
    assert built.tx.leaf_bytes().decode("utf-8") == g["leaf"]
    assert merkle.leaf_hash(built.tx.leaf_bytes()).hex() == g["leaf_hash"]
    # The genesis header commits to its one transaction: log_root = MTH({leaf}).
    assert built.header.log_size == 1 and built.header.log_root.hex() == g["leaf_hash"]
    assert built.header.prev_hash == bytes(32) and built.header.height == 0
    assert Genesis.from_bytes(g["file_canonical"].encode("utf-8")).header == built.header


def _validators() -> ValidatorSet:
    v = BLOCK["genesis"]["validators"]
    return ValidatorSet(node_keys={org: {kid: bytes.fromhex(pub) for kid, pub in keys.items()}
                                   for org, keys in v["node_keys"].items()},
                        threshold=v["threshold"])


def test_validator_set_comes_from_the_genesis_state() -> None:
    from ledger.contracts.membership import validator_set

    assert validator_set(MemoryState(dict(GENESIS.state_writes))) == _validators()  # type: ignore[arg-type]


@pytest.mark.parametrize("case", cases(BLOCK["state_root_steps"]))
def test_state_root_step(case: dict[str, Any]) -> None:
    changes = [(k, None if v is None else v.encode("utf-8")) for k, v in case["changes"]]
    assert changes == sorted(changes, key=lambda kv: kv[0])
    pairs = canonical_pairs(changes)
    assert pairs.decode("utf-8") == case["changes_canonical"]
    assert pairs == canonical([[k, None if v is None else loads(v)] for k, v in changes])
    assert sha256(pairs).hex() == case["changes_digest"]
    prev = bytes.fromhex(case["prev_state_root"])
    assert state_root_step(prev, changes).hex() == case["state_root"]
    literal = sha256(b"tradeledger/v1/state\x00" + prev + sha256(pairs))
    assert literal.hex() == case["state_root"]


def test_state_roots_chain_through_the_headers() -> None:
    steps = {s["desc"]: s for s in BLOCK["state_root_steps"]}
    assert steps["genesis: from the zero hash"]["state_root"] == (
        BLOCK["genesis"]["file"]["header"]["state_root"])
    prev = BLOCK["genesis"]["file"]["header"]
    for entry in BLOCK["headers"]:
        header = entry["header"]
        assert steps[entry["desc"]]["prev_state_root"] == prev["state_root"]
        assert steps[entry["desc"]]["state_root"] == header["state_root"]
        prev_hash = sha256(canonical(prev)).hex()
        assert header["prev_hash"] == prev_hash and header["height"] == prev["height"] + 1
        assert header["time"] >= prev["time"] and header["log_size"] >= prev["log_size"]
        prev = header


@pytest.mark.parametrize("case", cases(BLOCK["headers"]))
def test_header_hash_checkpoints_and_certificate(case: dict[str, Any]) -> None:
    header = BlockHeader.from_wire(case["header"])
    assert header.to_wire() == case["header"]
    assert header.canonical_bytes() == case["canonical"].encode("utf-8")
    assert header.hash.hex() == case["hash"]
    assert (Domain.CHECKPOINT.value + header.hash).hex() == case["checkpoint_signing_message"]
    cert = Certificate.from_wire(case["certificate"])
    assert cert.to_wire() == case["certificate"]
    for sig in cert.signatures:
        key = KEYS[case["checkpoint_signers"][sig.org]]
        assert sign_checkpoint(header, key, sig.org) == sig
    verify_certificate(header, cert, _validators())
    result = finality_result(header, cert, _validators())
    assert result.final is case["final"]
    assert list(result.signed) == case["signed"] and list(result.missing) == case["missing"]


def _outcome(exc: LedgerError, stage: str) -> dict[str, Any]:
    if isinstance(exc, MalformedRecord):
        return {"stage": stage, "field": exc.field, "rule": exc.rule}
    return {"stage": stage, "code": exc.code}


@pytest.mark.parametrize("case", cases(BLOCK["bad_headers"]))
def test_bad_header_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(MalformedRecord) as info:
        BlockHeader.from_wire(case["header"])
    assert _outcome(info.value, "header") == case["expected"]


@pytest.mark.parametrize("case", cases(BLOCK["bad_certificates"]))
def test_bad_certificate_is_refused(case: dict[str, Any]) -> None:
    header = BlockHeader.from_wire(case["header"])
    with pytest.raises(VerificationError) as info:
        verify_certificate(header, Certificate.from_wire(case["certificate"]), _validators())
    assert _outcome(info.value, "certificate") == case["expected"]
    if case["expected"]["code"] == "not_final":
        assert not finality_result(header, Certificate.from_wire(case["certificate"]),
                                   _validators()).final


@pytest.mark.parametrize("case", cases(BLOCK["bad_genesis"]))
def test_bad_genesis_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(LedgerError) as info:
        Genesis.from_bytes(case["genesis"].encode("utf-8"))
    assert _outcome(info.value, "genesis") == case["expected"]


# -- proof bundles (specs/protocol.md#proof-bundles, #verifying-a-proof-bundle) ---------------


GENESIS_BYTES = BUNDLE["genesis"].encode("utf-8")


def test_bundle_genesis_is_the_block_vectors_genesis() -> None:
    assert BLOCK["genesis"]["file_canonical"].encode("utf-8") == GENESIS_BYTES


@pytest.mark.parametrize("case", cases(BUNDLE["inclusion"]))
def test_inclusion_bundle_verifies(case: dict[str, Any]) -> None:
    bundle = case["bundle"]
    record = verify_inclusion_bundle(GENESIS_BYTES, bundle)
    want = case["verified"]
    assert record.tx_id == want["tx_id"] and record.leaf_index == want["leaf_index"]
    assert record.certified_height == want["certified_height"]
    assert list(record.signed_by) == want["signed_by"]
    # The ledger's own verifiers agree with the offline one.
    header = BlockHeader.from_wire(bundle["header"])
    verify_certificate(header, Certificate.from_wire(bundle["certificate"]), _validators())
    leaf = bundle["leaf"].encode("utf-8")
    merkle.verify_inclusion(merkle.leaf_hash(leaf), bundle["leaf_index"], header.log_size,
                            [bytes.fromhex(h) for h in bundle["inclusion_proof"]],
                            header.log_root)
    tx = SignedTx.from_bytes(leaf)
    assert tx.tx_id_hex == bundle["tx_id"] and tx.leaf_bytes() == leaf


@pytest.mark.parametrize("case", cases(BUNDLE["consistency"]))
def test_consistency_bundle_verifies(case: dict[str, Any]) -> None:
    bundle = case["bundle"]
    trusted = case.get("trusted_old_root")
    verify_consistency_bundle(GENESIS_BYTES, bundle,
                              None if trusted is None else bytes.fromhex(trusted))
    header = BlockHeader.from_wire(bundle["header"])
    assert bundle["new_size"] == header.log_size
    merkle.verify_consistency(bundle["old_size"], bundle["new_size"],
                              bytes.fromhex(bundle["old_root"]), header.log_root,
                              [bytes.fromhex(h) for h in bundle["consistency_proof"]])


@pytest.mark.parametrize("case", cases(BUNDLE["bad"]))
def test_bad_bundle_is_rejected(case: dict[str, Any]) -> None:
    genesis = case.get("genesis", BUNDLE["genesis"]).encode("utf-8")
    with pytest.raises(BundleError) as info:
        if case["kind"] == "consistency":
            trusted = case.get("trusted_old_root")
            verify_consistency_bundle(genesis, case["bundle"],
                                      None if trusted is None else bytes.fromhex(trusted))
        else:
            verify_inclusion_bundle(genesis, case["bundle"])
    assert case["expected"]["error_contains"] in str(info.value)


# -- signed requests (specs/api.md#signed-requests) -------------------------------------

REQUEST = json.loads((VECTORS / "request.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", [c for c in REQUEST["cases"] if "claims_canonical" in c],
                         ids=lambda c: c["desc"])
def test_request_claims_and_signatures(case: dict[str, Any]) -> None:
    import nacl.bindings

    from ledger.access import request_claims, sign_request
    from ledger.timefmt import parse_time

    now = parse_time(REQUEST["node_time"], field="node_time")
    claims = request_claims(chain_id=REQUEST["chain_id"], key_id=REQUEST["key"]["key_id"],
                            method=case["method"], target=case["target"],
                            body=case["body"].encode("utf-8"), time=now,
                            nonce=case["headers"]["TL-Nonce"])
    assert claims.decode("utf-8") == case["claims_canonical"]
    assert (Domain.REQUEST.value + claims).hex() == case["signing_message"]
    public = bytes.fromhex(REQUEST["key"]["public_key"])
    nacl.bindings.crypto_sign_open(bytes.fromhex(case["headers"]["TL-Signature"])
                                   + bytes.fromhex(case["signing_message"]), public)
    # The reference signer makes the same headers (Ed25519 is deterministic).
    again = sign_request(SigningKey(bytes.fromhex(REQUEST["key"]["seed"])),
                         chain_id=REQUEST["chain_id"], method=case["method"],
                         target=case["target"], body=case["body"].encode("utf-8"), time=now,
                         nonce=case["headers"]["TL-Nonce"])
    assert again == case["headers"]


@pytest.mark.parametrize("case", REQUEST["cases"], ids=lambda c: c["desc"])
def test_request_verdicts(case: dict[str, Any]) -> None:
    from ledger.access import check_request, parse_headers
    from ledger.timefmt import parse_time

    now = parse_time(REQUEST["node_time"], field="node_time")
    try:
        signed = parse_headers({k.lower(): v for k, v in case["headers"].items()})
        assert signed is not None
        check_request(signed, bytes.fromhex(REQUEST["key"]["public_key"]),
                      chain_id=REQUEST["chain_id"], method=case["method"],
                      target=case["target"], body=case["body"].encode("utf-8"), now=now)
        got: dict[str, Any] = {"outcome": "ok"}
    except LedgerError as exc:
        got = {"outcome": "refused", "code": exc.code}
    assert got == case["expected"]
