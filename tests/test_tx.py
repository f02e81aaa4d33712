"""Signed transactions: wire format, tx ids, signatures, strict validation."""

from __future__ import annotations

import copy
import hashlib
import pickle
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.encoding import canonical
from ledger.errors import MalformedRecord, VerificationError
from ledger.hashing import parse_hex
from ledger.keys import Domain, SigningKey
from ledger.tx import (
    SignedTx,
    TxSignature,
    add_signature,
    leaf_bytes,
    make_body,
    sign_tx,
    verify_tx_signatures,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BUYER = SigningKey(bytes([1]) * 32)
SELLER = SigningKey(bytes([2]) * 32)


def _tx(**payload: Any) -> SignedTx:
    body = make_body(tx_type="trade.order", chain_id="test-chain", author=BUYER,
                     payload=payload or {"order_id": "PO-1", "total": 1000},
                     nonce="nonce-0001", created_at=T0)
    return sign_tx(body, [BUYER])


def test_tx_id_is_sha256_of_the_canonical_body() -> None:
    tx = _tx()
    assert tx.tx_id == hashlib.sha256(canonical(tx.body.to_wire())).digest()
    assert tx.body_bytes == canonical(tx.body.to_wire())


def test_signature_covers_the_domain_and_tx_id() -> None:
    tx = _tx()
    verify_tx_signatures(tx, {BUYER.key_id: BUYER.public_key})
    sig = tx.signatures[0].signature
    assert BUYER.sign(Domain.TX, tx.tx_id) == sig  # Ed25519 is deterministic


def test_round_trip_through_the_wire() -> None:
    tx = _tx()
    again = SignedTx.from_wire(tx.to_wire())
    assert again == tx
    assert again.leaf_bytes() == canonical(tx.to_wire())


def test_a_pickled_transaction_comes_back_whole() -> None:
    """The worker process hands parsed transactions to the node pickled: fields,
    signatures and the cached forms intake computed arrive as they left."""
    fresh = add_signature(_tx(), SELLER)
    ready = SignedTx.from_wire(fresh.to_wire()).precompute()
    for tx in (fresh, ready):
        again = pickle.loads(pickle.dumps(tx))
        assert again == tx and again.__dict__ == tx.__dict__
        assert again.body.__dict__ == tx.body.__dict__ and again.signers == tx.signers
        assert again.to_wire() == tx.to_wire()
        assert again.leaf_hash == tx.leaf_hash and again.tx_id_hex == tx.tx_id_hex
        verify_tx_signatures(again, {BUYER.key_id: BUYER.public_key,
                                     SELLER.key_id: SELLER.public_key})
    assert {"tx_id_hex", "leaf_hash", "signatures_bytes"} <= pickle.loads(
        pickle.dumps(ready)).__dict__.keys()


def test_precomputed_forms_are_those_the_properties_give() -> None:
    """precompute() fills the cached forms itself; they are the ones a first read
    of each property computes, and the leaf hash is RFC 9162's over the leaf."""
    wire = add_signature(_tx(), SELLER).to_wire()
    ready = SignedTx.from_wire(wire).precompute()
    lazy = SignedTx.from_wire(wire)
    assert "leaf_hash" not in lazy.__dict__
    assert ready.__dict__["leaf_hash"] == lazy.leaf_hash == merkle.leaf_hash(lazy.leaf_bytes())
    assert ready.__dict__["signatures_bytes"] == lazy.signatures_bytes
    assert ready.__dict__["tx_id_hex"] == lazy.tx_id_hex == lazy.tx_id.hex()
    assert ready == lazy and ready.precompute() is ready


def test_two_party_record_carries_both_signatures() -> None:
    tx = add_signature(_tx(), SELLER)
    assert tx.signers == (BUYER.key_id, SELLER.key_id)
    verify_tx_signatures(tx, {BUYER.key_id: BUYER.public_key, SELLER.key_id: SELLER.public_key})


def test_a_changed_payload_breaks_the_signature() -> None:
    wire = _tx().to_wire()
    wire["body"]["payload"]["total"] = 1001
    forged = SignedTx.from_wire(wire)
    with pytest.raises(VerificationError):
        verify_tx_signatures(forged, {BUYER.key_id: BUYER.public_key})


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    wire = copy.deepcopy(_tx().to_wire())
    target = wire
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return wire


BAD_WIRES = [
    ("missing-body", ["body"], KeyError, "body", "required"),
    ("unknown-top-level-field", ["extra"], 1, "extra", "unknown_field"),
    ("unknown-body-field", ["body", "extra"], 1, "body.extra", "unknown_field"),
    ("bad-type-name", ["body", "type"], "Order", "body.type", "format"),
    ("bad-author", ["body", "author"], "xyz", "body.author", "format"),
    ("short-nonce", ["body", "nonce"], "abc", "body.nonce", "format"),
    ("non-utc-time", ["body", "created_at"], "2026-03-01T12:00:00+01:00", "body.created_at",
     "rfc3339"),
    ("expiry-before-creation", ["body", "expires_at"], "2026-03-01T11:00:00Z",
     "body.expires_at", "after_created"),
    ("ttl-over-a-day", ["body", "expires_at"], "2026-03-03T12:00:00Z", "body.expires_at",
     "max_ttl"),
    ("payload-not-object", ["body", "payload"], [1], "body.payload", "object"),
    ("no-signatures", ["signatures"], [], "signatures", "required"),
    ("signature-not-hex", ["signatures", 0, "signature"], "zz" * 64,
     "signatures[0].signature", "hex"),
    ("signature-short", ["signatures", 0, "signature"], "00" * 63,
     "signatures[0].signature", "length"),
    ("author-not-first", ["signatures", 0, "key_id"], SELLER.key_id, "signatures[0].key_id",
     "author_first"),
]


@pytest.mark.parametrize(("desc", "path", "value", "field", "rule"), BAD_WIRES,
                         ids=[b[0] for b in BAD_WIRES])
def test_malformed_wire_names_field_and_rule(desc: str, path: list[Any], value: Any,
                                             field: str, rule: str) -> None:
    with pytest.raises(MalformedRecord) as info:
        SignedTx.from_wire(_mutated(path, value))
    assert (info.value.field, info.value.rule) == (field, rule), desc


def test_duplicate_signer_is_refused() -> None:
    wire = _tx().to_wire()
    wire["signatures"].append(dict(wire["signatures"][0]))
    with pytest.raises(MalformedRecord) as info:
        SignedTx.from_wire(wire)
    assert info.value.rule == "duplicate_signer"


def test_floats_in_payload_are_signed_canonically() -> None:
    tx = _tx(temperature=26.0, reading=1e21)
    assert b'"temperature":26' in tx.body_bytes and b'"reading":1e+21' in tx.body_bytes
    assert SignedTx.from_bytes(canonical(tx.to_wire())) == tx


def test_make_body_ttl_is_bounded() -> None:
    with pytest.raises(MalformedRecord):
        make_body(tx_type="trade.order", chain_id="c1", author=BUYER, payload={}, nonce="n" * 8,
                  created_at=T0, ttl=timedelta(days=2))


def test_a_body_travels_exactly_as_signed_even_with_unusual_time_spelling() -> None:
    wire = _tx().to_wire()
    wire["body"]["created_at"] = "2026-03-01T12:00:00.000Z"  # legal, not our own spelling
    body_bytes = canonical(wire["body"])
    tx_id = hashlib.sha256(body_bytes).digest()
    wire["signatures"] = [{"key_id": BUYER.key_id,
                           "signature": BUYER.sign(Domain.TX, tx_id).hex()}]
    tx = SignedTx.from_wire(wire)
    assert tx.tx_id == tx_id
    assert SignedTx.from_wire(tx.to_wire()).tx_id == tx_id
    both = add_signature(tx, SELLER)
    assert both.tx_id == tx_id
    verify_tx_signatures(both, {BUYER.key_id: BUYER.public_key,
                                SELLER.key_id: SELLER.public_key})


def test_editing_the_wire_form_does_not_edit_the_transaction() -> None:
    tx = _tx()
    wire = tx.body.to_wire()
    wire["payload"]["total"] = 1
    assert tx.body.payload["total"] == 1000
    assert SignedTx.from_wire(tx.to_wire()) == tx


_HEX_PAIRS = re.compile(r"(?:[0-9a-f]{2})*")  # the literal rule, as a reference


@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEF \t\n\u0661xg", max_size=8),
                 st.text(max_size=8), st.binary(max_size=8).map(bytes.hex)))
def test_hex_fields_take_exactly_lower_case_digit_pairs(value: str) -> None:
    try:
        parse_hex(value, field="f")
        accepted = True
    except MalformedRecord as exc:
        assert (exc.field, exc.rule) == ("f", "hex")
        accepted = False
    assert accepted == bool(_HEX_PAIRS.fullmatch(value))


@given(st.lists(st.tuples(st.one_of(st.text(alphabet="0123456789abcdef", min_size=32,
                                            max_size=32),
                                    st.text(max_size=12)),
                          st.binary(min_size=64, max_size=64)), max_size=4))
def test_stored_signatures_are_their_canonical_form(pairs: list[tuple[str, bytes]]) -> None:
    # The leaf's signatures member is written directly for the usual key ids; any
    # key id, usual or not, gives exactly canonical([{key_id, signature}, ...]).
    sigs = tuple(TxSignature(kid, raw) for kid, raw in pairs)
    expected = canonical([s.to_wire() for s in sigs])
    assert leaf_bytes(b"{}", sigs) == b'{"body":{},"signatures":' + expected + b"}"


class _Str(str):
    """A str subclass: the exact parser takes it, the fast path leaves it to it."""


_SIG = _tx().signatures[0].signature.hex()
# Near misses for each member, and values of the wrong JSON type for all.
_NEAR: dict[str, list[Any]] = {
    "type": ["Order", "trade", "trade.order", "trade.order.", _Str("trade.order")],
    "chain_id": ["test-chain", "Test-Chain", "", "x" * 65, _Str("test-chain")],
    "author": [SELLER.key_id, BUYER.key_id.upper(), BUYER.key_id[:-1], _Str(BUYER.key_id)],
    "nonce": ["abc", "nonce 0001", "n" * 64, "n" * 65, _Str("nonce-0002")],
    "created_at": ["2026-03-01T11:00:00Z", "2026-03-01T12:00:00.5Z", "2026-02-28T12:00:01Z",
                   "2026-03-01T12:00:00+01:00", "2026-02-30T12:00:00Z", "2026-03-01t12:00:00z"],
    "expires_at": ["2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z", "2026-03-02T12:00:01Z",
                   "2026-03-01T11:59:59.999999Z", "2026-13-01T12:00:00Z"],
    "payload": [[1], "x", {"a": 1}, {}],
    "key_id": [SELLER.key_id, BUYER.key_id, BUYER.key_id.upper(), _Str(BUYER.key_id)],
    "signature": [_SIG.upper(), _SIG[:-2], _SIG + "00", " " + _SIG[1:], "zz" + _SIG[2:],
                  _Str(_SIG)],
}
_WRONG_TYPES: list[Any] = [None, True, 0, 1.5, "", [], {}, [1]]
_PLACES: list[tuple[Any, ...]] = [
    (), ("body",), *(("body", f) for f in ("type", "chain_id", "author", "nonce",
                                           "created_at", "expires_at", "payload")),
    ("signatures",), ("signatures", 0), ("signatures", 1), ("signatures", 0, "key_id"),
    ("signatures", 0, "signature"), ("signatures", 1, "key_id"),
    ("signatures", 1, "signature")]


def _edit(wire: dict[str, Any], data: st.DataObject) -> None:
    """One random edit at one of _PLACES: a near miss or a wrong type, a deleted
    member, an extra one, or a list made shorter or longer."""
    place = data.draw(st.sampled_from(_PLACES))
    target: Any = wire
    for part in place[:-1]:
        target = target[part] if isinstance(target, dict | list) and (
            part in target if isinstance(target, dict) else part < len(target)) else None
    if not place or target is None:
        target, last = wire, "extra"
    else:
        last = place[-1]
    if isinstance(target, list) and isinstance(last, int) and last < len(target):
        action = data.draw(st.sampled_from(["set", "drop", "dup", "many"]))
        if action == "set":
            target[last] = data.draw(st.sampled_from(_WRONG_TYPES))
        elif action == "drop":
            del target[last]
        elif action == "dup":
            target.append(copy.deepcopy(target[last]))
        else:
            target.extend(copy.deepcopy(target[last:last + 1]) * 8)
    elif isinstance(target, dict):
        action = data.draw(st.sampled_from(["near", "near", "wrong", "drop", "extra"]))
        if action == "drop":
            target.pop(last, None)
        elif action == "extra":
            target["extra"] = 1
        elif action == "near" and last in _NEAR:
            target[last] = data.draw(st.sampled_from(_NEAR[last]))
        else:
            target[last] = data.draw(st.sampled_from(_WRONG_TYPES))


def _outcome(parse: Any, wire: Any) -> Any:
    try:
        tx = parse(copy.deepcopy(wire))
    except MalformedRecord as exc:
        return ("refused", exc.field, exc.rule, exc.message)
    return ("parsed", tx, tx.body_bytes, tx.tx_id, [type(v) for v in vars(tx.body).values()])


@settings(max_examples=400)
@given(st.data())
def test_the_fast_parser_agrees_with_the_exact_one(data: st.DataObject) -> None:
    """SignedTx.from_wire takes a fast path for well-formed input; on every input
    it gives what the field-by-field parser gives: the same transaction, or the
    same error naming the same field and rule."""
    two = add_signature(_tx(), SELLER)
    wire = copy.deepcopy(data.draw(st.sampled_from([_tx(), two])).to_wire())
    for _ in range(data.draw(st.integers(0, 2))):
        _edit(wire, data)
    assert _outcome(SignedTx.from_wire, wire) == _outcome(SignedTx.exact_from_wire, wire)
