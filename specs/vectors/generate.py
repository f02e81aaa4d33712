"""Generate the test vectors: specs/vectors/tx.json, block.json, bundle.json, rating.json,
confidential.json.

Usage (from the repository root)::

    .venv/bin/python specs/vectors/generate.py          # write the five files
    .venv/bin/python specs/vectors/generate.py --check  # exit 1 if a file is stale

Everything is derived from fixed inputs, so two runs give identical bytes:

* every Ed25519 key comes from the seed ``SHA-256("tradeledger/vectors/v1/" + label)``
  (RFC 8032 signatures are deterministic); so do the X25519 keys, the salt and the
  sealed boxes' ephemeral keys of confidential.json;
* every time is fixed (the genesis is at 2026-01-05T09:00:00Z, block ``h`` at ``h`` minutes
  later);
* the chain is built by the real node (:class:`node.service.LedgerNode`) over a temporary
  SQLite store, driven by a fixed clock, with the second validator's checkpoint
  signatures added as a peer node would add them.

The expected outcome of every bad case is written here by hand, from specs/protocol.md;
:func:`build` then runs the implementation on each case and refuses to write the files if
the implementation disagrees, unless the case is marked ``known_bug`` (a defect reported
against the implementation, which the tests mark as an expected failure).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nacl.bindings  # noqa: E402

from client import verify as client_verify  # noqa: E402
from ledger import merkle  # noqa: E402
from ledger.block import (  # noqa: E402
    BlockHeader,
    Certificate,
    sign_checkpoint,
    state_root_step,
    verify_certificate,
)
from ledger.chain import Genesis, make_genesis  # noqa: E402
from ledger.confidential import (  # noqa: E402
    COMMITMENT_DOMAIN,
    commitment_of,
    committed_plaintext,
    open_sealed,
    seal,
)
from ledger.contracts import REGISTRY, parse_payload  # noqa: E402
from ledger.contracts.membership import validator_set  # noqa: E402
from ledger.encoding import canonical, canonical_pairs, loads  # noqa: E402
from ledger.errors import LedgerError, MalformedRecord, VerificationError  # noqa: E402
from ledger.executor import BlockContext, execute_block  # noqa: E402
from ledger.hashing import sha256  # noqa: E402
from ledger.keys import Domain, EncryptionKey, SigningKey  # noqa: E402
from ledger.state import MemoryState  # noqa: E402
from ledger.store import Store  # noqa: E402
from ledger.timefmt import format_time  # noqa: E402
from ledger.tx import SignedTx, make_body, sign_tx, verify_tx_signatures  # noqa: E402
from node.routes_ratings import read_attestation  # noqa: E402
from node.service import LedgerNode  # noqa: E402

SEED_PREFIX = "tradeledger/vectors/v1/"
CHAIN_ID = "tl-vectors"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FILES = ("tx.json", "block.json", "bundle.json", "rating.json", "confidential.json")

# label -> enrolled at genesis? ("supplier-sz/member2" is enrolled by a transaction of
# block 1; "outsider" is never enrolled.)
KEY_LABELS: dict[str, bool] = {
    "platform/admin": True,
    "platform/node": True,
    "supplier-sz/admin": True,
    "supplier-sz/member": True,
    "supplier-sz/node": True,
    "buyer-lyon/admin": True,
    "buyer-lyon/member": True,
    "buyer-lyon/node": True,
    "supplier-sz/member2": False,
    "outsider": False,
}


def seed_of(label: str) -> bytes:
    return sha256((SEED_PREFIX + label).encode("utf-8"))


K: dict[str, SigningKey] = {label: SigningKey(seed_of(label)) for label in KEY_LABELS}


def enrolled_keys() -> dict[str, bytes]:
    return {K[label].key_id: K[label].public_key
            for label, enrolled in KEY_LABELS.items() if enrolled}


def description() -> dict[str, Any]:
    """The ``membership.genesis`` payload of the three-organisation test consortium."""

    def org(org_id: str, name: str, country: str, roles: list[str],
            members: Sequence[str]) -> dict[str, Any]:
        return {
            "id": org_id, "name": name, "country": country, "roles": roles,
            "admin_keys": [K[f"{org_id}/admin"].public_key_hex],
            "member_keys": [K[f"{org_id}/{m}"].public_key_hex for m in members],
            "node_keys": [K[f"{org_id}/node"].public_key_hex],
        }

    return {
        "chain_id": CHAIN_ID,
        "name": "TradeLedger test-vector consortium",
        "organisations": [
            org("platform", "TradeLedger Platform", "SG", ["platform"], []),
            org("supplier-sz", "Shenzhen Bright Electronics", "CN", ["supplier"], ["member"]),
            org("buyer-lyon", "Maison Rhône SARL", "FR", ["buyer"], ["member"]),
        ],
        "quorum": {"validators": ["platform", "supplier-sz", "buyer-lyon"], "threshold": 2},
        "policy": {},
    }


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def wire_of(tx: SignedTx) -> dict[str, Any]:
    """The exact wire form of a signed transaction (from its signed bytes)."""
    result: dict[str, Any] = json.loads(tx.leaf_bytes())
    return result


def flip(hex_text: str, byte: int) -> str:
    """Flip the lowest bit of byte ``byte`` of a hex string (the ``@byte`` in case names)."""
    raw = bytearray.fromhex(hex_text)
    raw[byte] ^= 0x01
    return raw.hex()


def problem(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MalformedRecord):
        return {"field": exc.field, "rule": exc.rule}
    if isinstance(exc, LedgerError):
        return {"code": exc.code}
    return {"error": f"{type(exc).__name__}: {exc}"}


class Disagreement(Exception):
    """The implementation does not do what a hand-written expectation says."""


def check_case(case: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Compare an implementation outcome with the case's expectation."""
    expected = {k: v for k, v in case["expected"].items() if k != "stage"}
    got = {k: outcome.get(k) for k in expected}
    agrees = got == expected and outcome.get("stage") == case["expected"].get("stage")
    if case.get("known_bug"):
        if agrees:
            raise Disagreement(f"{case['desc']}: marked known_bug but the implementation "
                               "now agrees; drop the mark")
        return
    if not agrees:
        raise Disagreement(f"{case['desc']}: expected {case['expected']}, got {outcome}")


# -- transactions -------------------------------------------------------------------------


def good_transactions() -> list[tuple[str, SignedTx]]:
    """The committed transactions of the vector chain, in log order after genesis."""
    hour = timedelta(hours=1)
    enrol = sign_tx(make_body(
        tx_type="membership.key_enrol", chain_id=CHAIN_ID, author=K["supplier-sz/admin"],
        payload={"org": "supplier-sz", "public_key": K["supplier-sz/member2"].public_key_hex,
                 "kind": "member", "label": "accounts receivable desk"},
        nonce="vectors-0001", created_at=at(30), ttl=hour), [K["supplier-sz/admin"]])
    order = sign_tx(make_body(
        tx_type="trade.order", chain_id=CHAIN_ID, author=K["buyer-lyon/member"],
        payload={"order_id": "PO-2026-0001", "buyer": "buyer-lyon", "seller": "supplier-sz",
                 "currency": "EUR", "total": 1250000, "incoterms": "FOB",
                 "delivery_by": "2026-03-31"},
        nonce="vectors-0002", created_at=at(40.25), ttl=hour),
        [K["buyer-lyon/member"], K["supplier-sz/member"]])
    invoice = sign_tx(make_body(
        tx_type="trade.invoice", chain_id=CHAIN_ID, author=K["supplier-sz/member"],
        payload={"invoice_id": "INV-2026-0001", "order_id": "PO-2026-0001",
                 "amount": 1250000, "currency": "EUR", "issue_date": "2026-01-05",
                 "due_date": "2026-03-06",
                 "payment_terms": "60 jours fin de mois – payable en €"},
        nonce="vectors-0003", created_at=at(90), ttl=hour), [K["supplier-sz/member"]])
    ack = sign_tx(make_body(
        tx_type="trade.invoice_ack", chain_id=CHAIN_ID, author=K["buyer-lyon/member"],
        payload={"invoice_id": "INV-2026-0001"},
        nonce="vectors-0004", created_at=at(100), ttl=hour), [K["buyer-lyon/member"]])
    payment = sign_tx(make_body(
        tx_type="trade.payment", chain_id=CHAIN_ID, author=K["buyer-lyon/member"],
        payload={"payment_id": "PAY-2026-0001", "invoice_id": "INV-2026-0001",
                 "amount": 500000, "currency": "EUR", "value_date": "2026-01-05"},
        nonce="vectors-0005", created_at=at(150), ttl=timedelta(hours=24)),
        [K["buyer-lyon/member"]])
    return [
        ("key-enrol-one-signature", enrol),
        ("trade-order-two-signatures-fractional-time", order),
        ("trade-invoice-non-ascii-payload", invoice),
        ("trade-invoice-ack", ack),
        ("trade-payment-ttl-24h", payment),
    ]


# Block of each good transaction (the vector chain): block 1 = first two, etc.
BLOCKS: list[list[int]] = [[0, 1], [2, 3], [4]]


def tx_entry(desc: str, tx: SignedTx, signers: Sequence[str]) -> dict[str, Any]:
    leaf = tx.leaf_bytes()
    return {
        "desc": desc,
        "wire": wire_of(tx),
        "body_canonical": tx.body_bytes.decode("utf-8"),
        "tx_id": tx.tx_id_hex,
        "signers": list(signers),
        "signing_messages": [(Domain.TX.value + tx.tx_id).hex() for _ in tx.signatures],
        "signatures": [s.signature.hex() for s in tx.signatures],
        "leaf": leaf.decode("utf-8"),
        "leaf_hash": merkle.leaf_hash(leaf).hex(),
    }


def resign(wire: dict[str, Any], keys: Sequence[SigningKey]) -> dict[str, Any]:
    """Sign ``wire["body"]`` again (as given) with ``keys``; for deliberately bad bodies."""
    tx_id = sha256(canonical(wire["body"]))
    out = copy.deepcopy(wire)
    out["signatures"] = [{"key_id": k.key_id, "signature": k.sign(Domain.TX, tx_id).hex()}
                         for k in keys]
    return out


def run_tx_stages(case: dict[str, Any]) -> dict[str, Any]:
    """Run a transaction case through decode, wire, payload and signature checks.

    Returns ``{"stage": <first failing stage>, ...problem}`` or ``{"stage": "ok"}``.
    """
    try:
        wire = loads(case["text"]) if "text" in case else case["wire"]
    except MalformedRecord as exc:
        return {"stage": "decode", **problem(exc)}
    try:
        tx = SignedTx.from_wire(wire)
    except MalformedRecord as exc:
        return {"stage": "wire", **problem(exc)}
    spec = REGISTRY.get(tx.body.type)
    try:
        if spec is None or tx.body.type == "membership.genesis":
            raise MalformedRecord(f"unknown transaction type {tx.body.type!r}",
                                  field="body.type", rule="known_type")
        parse_payload(spec.payload, tx.body.payload, path="body.payload")
    except MalformedRecord as exc:
        return {"stage": "payload", **problem(exc)}
    try:
        verify_tx_signatures(tx, enrolled_keys())
    except VerificationError as exc:
        return {"stage": "signature", **problem(exc)}
    return {"stage": "ok"}


def bad_transactions(good: Mapping[str, SignedTx]) -> list[dict[str, Any]]:
    order = wire_of(good["trade-order-two-signatures-fractional-time"])
    enrol = wire_of(good["key-enrol-one-signature"])
    invoice = wire_of(good["trade-invoice-non-ascii-payload"])
    author = [K["buyer-lyon/member"]]
    both = [K["buyer-lyon/member"], K["supplier-sz/member"]]
    cases: list[dict[str, Any]] = []

    def add(desc: str, expected: dict[str, Any], *, wire: Any = None, text: str | None = None,
            known_bug: str | None = None) -> None:
        case: dict[str, Any] = {"desc": desc}
        if text is not None:
            case["text"] = text
        else:
            case["wire"] = wire
        case["expected"] = expected
        if known_bug:
            case["known_bug"] = known_bug
        cases.append(case)

    def body_change(base: dict[str, Any], change: Callable[[dict[str, Any]], None],
                    keys: Sequence[SigningKey]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        change(out["body"])
        return resign(out, keys)

    def setter(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(body: dict[str, Any]) -> None:
            body[name] = value
        return change

    # -- decode: ledger.encoding.loads ----------------------------------------------------
    text = json.dumps(enrol, ensure_ascii=False, separators=(",", ":"))
    add("duplicate-member-nonce",
        {"stage": "decode", "field": "nonce", "rule": "duplicate_key"},
        text=text.replace('"nonce":"vectors-0001"',
                          '"nonce":"vectors-0001","nonce":"vectors-9999"'))
    add("nan-in-payload", {"stage": "decode", "field": "$", "rule": "finite_number"},
        text=text.replace('"kind":"member"', '"kind":NaN'))
    add("truncated-json", {"stage": "decode", "field": "$", "rule": "json"}, text=text[:-1])

    # -- wire: SignedTx.from_wire ---------------------------------------------------------
    w = copy.deepcopy(order)
    w["body"]["memo"] = "pay early"
    add("unknown-field", {"stage": "wire", "field": "body.memo", "rule": "unknown_field"},
        wire=resign(w, both))
    w = copy.deepcopy(order)
    w["meta"] = {"client": "x"}
    add("unknown-top-level-field", {"stage": "wire", "field": "meta", "rule": "unknown_field"},
        wire=w)
    w = copy.deepcopy(order)
    del w["body"]["nonce"]
    add("missing-nonce", {"stage": "wire", "field": "body.nonce", "rule": "required"}, wire=w)
    for desc, name, value in [
        ("nonce-too-short", "nonce", "abc1234"),
        ("nonce-with-dot", "nonce", "vectors.0002"),
        ("author-upper-case", "author", order["body"]["author"].upper()),
        ("type-not-dotted", "type", "order"),
        ("type-upper-case", "type", "Trade.Order"),
        ("chain-id-upper-case", "chain_id", "TL-Vectors"),
        ("chain-id-65-characters", "chain_id", "t" * 65),
    ]:
        add(desc, {"stage": "wire", "field": f"body.{name}", "rule": "format"},
            wire=body_change(order, setter(name, value), author))
    for desc, value in [
        ("created-at-with-offset", "2026-01-05T10:00:40+01:00"),
        ("created-at-lower-case-t-and-z", "2026-01-05t09:00:40z"),
        ("created-at-seven-fraction-digits", "2026-01-05T09:00:40.1234567Z"),
        ("created-at-leap-second", "2026-01-05T08:59:60Z"),
        ("created-at-as-number", 1767603640),
    ]:
        add(desc, {"stage": "wire", "field": "body.created_at", "rule": "rfc3339"},
            wire=body_change(order, setter("created_at", value), author))
    add("created-at-fullwidth-digits",
        {"stage": "wire", "field": "body.created_at", "rule": "rfc3339"},
        wire=body_change(order, setter("created_at", "２０２６-01-05T09:00:40Z"), author))
    add("expires-at-equals-created-at",
        {"stage": "wire", "field": "body.expires_at", "rule": "after_created"},
        wire=body_change(order, setter("expires_at", order["body"]["created_at"]), author))
    add("ttl-24-hours-and-1-second",
        {"stage": "wire", "field": "body.expires_at", "rule": "max_ttl"},
        wire=body_change(order, setter("expires_at", "2026-01-06T09:00:41.25Z"), author))
    add("payload-is-a-list", {"stage": "wire", "field": "body.payload", "rule": "object"},
        wire=body_change(order, setter("payload", []), author))
    w = copy.deepcopy(order)
    w["signatures"] = []
    add("no-signatures", {"stage": "wire", "field": "signatures", "rule": "required"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"] = [order["signatures"][0]] * 9
    add("nine-signatures", {"stage": "wire", "field": "signatures", "rule": "max_items"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"] = [order["signatures"][0], order["signatures"][0]]
    add("duplicate-signer", {"stage": "wire", "field": "signatures", "rule": "duplicate_signer"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"] = list(reversed(order["signatures"]))
    add("author-not-first",
        {"stage": "wire", "field": "signatures[0].key_id", "rule": "author_first"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = w["signatures"][0]["signature"].upper()
    add("signature-upper-case-hex",
        {"stage": "wire", "field": "signatures[0].signature", "rule": "hex"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = w["signatures"][0]["signature"][:-2]
    add("signature-63-bytes",
        {"stage": "wire", "field": "signatures[0].signature", "rule": "length"}, wire=w)
    w = copy.deepcopy(order)
    sig = w["signatures"][1]["signature"]
    w["signatures"][1]["signature"] = sig[:64] + " " + sig[64:]
    add("signature-with-a-space",
        {"stage": "wire", "field": "signatures[1].signature", "rule": "hex"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][1]["weight"] = 1
    add("signature-entry-unknown-field",
        {"stage": "wire", "field": "signatures[1].weight", "rule": "unknown_field"}, wire=w)

    # -- payload: the type's model (node intake order) ------------------------------------
    add("unknown-type", {"stage": "payload", "field": "body.type", "rule": "known_type"},
        wire=body_change(order, setter("type", "trade.barter"), author))
    add("genesis-type-submitted", {"stage": "payload", "field": "body.type",
                                   "rule": "known_type"},
        wire=body_change(order, setter("type", "membership.genesis"), author))

    def payload_change(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(body: dict[str, Any]) -> None:
            if value is KeyError:
                del body["payload"][name]
            else:
                body["payload"][name] = value
        return change

    for desc, name, value, field, rule in [
        ("payload-unknown-member", "discount", 5, "body.payload.discount", "extra_forbidden"),
        ("payload-missing-member", "currency", KeyError, "body.payload.currency", "missing"),
        ("total-as-string", "total", "1250000", "body.payload.total", "int_type"),
        ("total-as-fraction", "total", 1250000.5, "body.payload.total", "int_type"),
        ("total-zero", "total", 0, "body.payload.total", "greater_than"),
        ("currency-lower-case", "currency", "eur", "body.payload.currency",
         "string_pattern_mismatch"),
        ("currency-not-iso-4217", "currency", "XYZ", "body.payload.currency", "value_error"),
    ]:
        add(desc, {"stage": "payload", "field": field, "rule": rule},
            wire=body_change(order, payload_change(name, value), both))
    big = body_change(order, payload_change("total", 1250000), both)
    add("total-beyond-safe-range-read-as-double",
        {"stage": "payload", "field": "body.payload.total", "rule": "int_type"},
        text=json.dumps(big, ensure_ascii=False, separators=(",", ":")).replace(
            '"total":1250000', '"total":9007199254740993'))

    # -- signature: Ed25519 over DOMAIN_TX || tx_id -----------------------------------------
    w = copy.deepcopy(order)
    w["body"]["payload"]["total"] = 1250001
    add("modified-payload-amount", {"stage": "signature", "code": "bad_signature"}, wire=w)
    w = copy.deepcopy(order)
    w["body"]["created_at"] = "2026-01-05T09:00:41.25Z"
    add("modified-created-at", {"stage": "signature", "code": "bad_signature"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = flip(w["signatures"][0]["signature"], 3)
    add("signature-bit-flipped-@3", {"stage": "signature", "code": "bad_signature"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][1]["signature"] = flip(w["signatures"][1]["signature"], 63)
    add("countersignature-bit-flipped-@63", {"stage": "signature", "code": "bad_signature"},
        wire=w)
    tx_id = sha256(canonical(order["body"]))
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = K["buyer-lyon/member"].sign(
        Domain.CHECKPOINT, tx_id).hex()
    add("wrong-domain-checkpoint-signature", {"stage": "signature", "code": "bad_signature"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = K["buyer-lyon/member"].sign(
        Domain.REQUEST, tx_id).hex()
    add("wrong-domain-request-signature", {"stage": "signature", "code": "bad_signature"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"][0]["signature"] = K["buyer-lyon/member"].sign(
        Domain.TX, canonical(order["body"])).hex()
    add("signed-body-bytes-instead-of-tx-id", {"stage": "signature", "code": "bad_signature"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"][1]["signature"] = invoice["signatures"][0]["signature"]
    add("countersignature-copied-from-another-tx",
        {"stage": "signature", "code": "bad_signature"}, wire=w)
    w = copy.deepcopy(order)
    w["signatures"][1] = {"key_id": K["supplier-sz/admin"].key_id,
                          "signature": order["signatures"][1]["signature"]}
    add("countersignature-key-id-swapped", {"stage": "signature", "code": "bad_signature"},
        wire=w)
    w = copy.deepcopy(order)
    w["signatures"][1] = {"key_id": K["outsider"].key_id,
                          "signature": K["outsider"].sign(Domain.TX, tx_id).hex()}
    add("countersigned-by-unknown-key", {"stage": "signature", "code": "unknown_key"}, wire=w)
    return cases


def equivalent_transactions(good: Mapping[str, SignedTx]) -> list[dict[str, Any]]:
    """Different JSON texts of one transaction: same canonical body, same tx_id."""
    invoice = good["trade-invoice-non-ascii-payload"]
    wire = wire_of(invoice)
    reordered = {"signatures": wire["signatures"],
                 "body": dict(reversed(list(wire["body"].items())))}
    return [
        {"desc": "members-reordered-and-indented",
         "text": json.dumps(reordered, indent=4, ensure_ascii=False),
         "tx_id": invoice.tx_id_hex, "body_canonical": invoice.body_bytes.decode("utf-8")},
        {"desc": "non-ascii-written-as-escapes",
         "text": json.dumps(wire, ensure_ascii=True),
         "tx_id": invoice.tx_id_hex, "body_canonical": invoice.body_bytes.decode("utf-8")},
    ]


def execution_cases(genesis: Genesis) -> list[dict[str, Any]]:
    """Transactions executed as block 1 on the genesis state (ledger.executor)."""
    hour = timedelta(hours=1)
    buyer = K["buyer-lyon/member"]
    supplier = K["supplier-sz/member"]

    def order(nonce: str, *, keys: Sequence[SigningKey] | None = None, author: SigningKey = buyer,
              created: datetime = at(40), chain_id: str = CHAIN_ID, tx_type: str = "trade.order",
              payload: dict[str, Any] | None = None, ttl: timedelta = hour) -> SignedTx:
        body = make_body(
            tx_type=tx_type, chain_id=chain_id, author=author,
            payload=payload if payload is not None else {
                "order_id": f"PO-{nonce}", "buyer": "buyer-lyon", "seller": "supplier-sz",
                "currency": "EUR", "total": 1000},
            nonce=nonce, created_at=created, ttl=ttl)
        return sign_tx(body, keys if keys is not None else [author, supplier])

    cases: list[tuple[str, str, list[SignedTx | dict[str, Any]], list[str]]] = []
    base = order("exec-0001")
    cases.append(("accepted-at-expiry-instant", format_time(base.body.expires_at),
                  [base], ["accepted"]))
    cases.append(("expired-one-second-after-expiry",
                  format_time(base.body.expires_at + timedelta(seconds=1)), [base],
                  ["expired"]))
    cases.append(("accepted-five-minutes-before-created-at",
                  format_time(base.body.created_at - timedelta(minutes=5)), [base],
                  ["accepted"]))
    cases.append(("from-the-future-by-five-minutes-and-one-second",
                  format_time(base.body.created_at - timedelta(minutes=5, seconds=1)), [base],
                  ["from_the_future"]))
    block_time = format_time(at(60))
    cases.append(("wrong-chain", block_time,
                  [order("exec-0002", chain_id="tl-elsewhere")], ["wrong_chain"]))
    cases.append(("unknown-type", block_time, [order("exec-0003", tx_type="trade.barter")],
                  ["unknown_type"]))
    cases.append(("genesis-type-after-height-0", block_time,
                  [order("exec-0004", tx_type="membership.genesis")],
                  ["genesis_only_at_zero"]))
    bad_sig = wire_of(order("exec-0005", payload={"order_id": "PO-x"}))
    bad_sig["signatures"][0]["signature"] = flip(bad_sig["signatures"][0]["signature"], 0)
    cases.append(("payload-is-checked-before-signatures", block_time, [bad_sig],
                  ["malformed"]))
    unsigned = wire_of(order("exec-0006"))
    unsigned["signatures"][0]["signature"] = flip(unsigned["signatures"][0]["signature"], 0)
    cases.append(("signature-bit-flipped-@0", block_time, [unsigned], ["bad_signature"]))
    cases.append(("author-key-not-enrolled", block_time,
                  [order("exec-0007", author=K["outsider"], keys=[K["outsider"], supplier])],
                  ["unknown_key"]))
    cases.append(("node-key-signs-a-transaction", block_time,
                  [order("exec-0008", author=K["buyer-lyon/node"],
                         keys=[K["buyer-lyon/node"], supplier])], ["node_key"]))
    first = order("exec-0009")
    second = order("exec-0009", payload={
        "order_id": "PO-exec-0009-b", "buyer": "buyer-lyon", "seller": "supplier-sz",
        "currency": "EUR", "total": 2000})
    cases.append(("nonce-reused-in-one-block", block_time, [first, second],
                  ["accepted", "nonce_reused"]))
    cases.append(("role-not-allowed", block_time,
                  [order("exec-0010", author=supplier, keys=[supplier],
                         tx_type="trade.invoice_ack",
                         payload={"invoice_id": "INV-none"})], ["role_not_allowed"]))
    cases.append(("order-without-countersignature", block_time,
                  [order("exec-0011", keys=[buyer])], ["missing_signature"]))
    cases.append(("new-key-usable-in-the-block-that-enrols-it", block_time,
                  [sign_tx(make_body(
                      tx_type="membership.key_enrol", chain_id=CHAIN_ID,
                      author=K["supplier-sz/admin"],
                      payload={"org": "supplier-sz",
                               "public_key": K["supplier-sz/member2"].public_key_hex,
                               "kind": "member"},
                      nonce="exec-0012", created_at=at(40), ttl=hour),
                      [K["supplier-sz/admin"]]),
                   order("exec-0013", keys=[buyer, K["supplier-sz/member2"]])],
                  ["accepted", "accepted"]))
    out = []
    state = MemoryState(dict(genesis.state_writes))  # type: ignore[arg-type]
    for desc, when, txs, expected in cases:
        wires = [t if isinstance(t, dict) else wire_of(t) for t in txs]
        outcome = run_execution(state, when, wires)
        if outcome != expected:
            raise Disagreement(f"execution {desc}: expected {expected}, got {outcome}")
        out.append({"desc": desc, "height": 1, "block_time": when, "txs": wires,
                    "expected": expected})
    return out


def run_execution(state: MemoryState, block_time: str, wires: Sequence[Any]) -> list[str]:
    from ledger.timefmt import parse_time

    txs = [SignedTx.from_wire(w) for w in wires]
    ctx = BlockContext(chain_id=CHAIN_ID, height=1,
                       time=parse_time(block_time, field="block_time"))
    result = execute_block(state, txs, ctx)
    codes = {id(r.tx): r.error.code for r in result.refused}
    return [codes.get(id(t), "accepted") for t in txs]


# -- the chain ------------------------------------------------------------------------------


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@contextlib.contextmanager
def vector_node(genesis: Genesis) -> Iterator[tuple[LedgerNode, Store]]:
    """The platform's node over a temporary SQLite store, on a fixed clock."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/ledger.db")
        node = LedgerNode(store, genesis, node_key=K["platform/node"], node_org="platform",
                          clock=FixedClock(at(60)))  # type: ignore[arg-type]
        try:
            yield node, store
        finally:
            node.stop()
            store.close()


def cut_vector_block(node: LedgerNode, store: Store, number: int,
                     txs: Sequence[SignedTx]) -> BlockHeader:
    """Block ``number`` at ``number`` minutes after genesis holding exactly ``txs``; the
    supplier's node signs the same header, as a peer validator would."""
    node.clock.current = at(60 * number)  # type: ignore[attr-defined]
    for tx in txs:
        status = node.submit(wire_of(tx))
        assert status.status == "pending", status
    header = node.cut_block()
    assert header is not None and header.height == number
    assert len(store.txs_in_block(number)) == len(txs)
    store.add_checkpoint_signature(header.height, header.hash,
                                   sign_checkpoint(header, K["supplier-sz/node"], "supplier-sz"))
    return header


def build_chain(genesis: Genesis, txs: Sequence[SignedTx]) -> dict[str, Any]:
    """Run the node over a temporary SQLite store; return headers, certificates, bundles."""
    with vector_node(genesis) as (node, store):
        headers = [genesis.header]
        bundles: dict[str, Any] = {}
        for number, indices in enumerate(BLOCKS, start=1):
            header = cut_vector_block(node, store, number, [txs[i] for i in indices])
            headers.append(header)
            if number == 2:
                bundles["inclusion-invoice-against-height-2"] = node.inclusion_bundle(
                    txs[2].tx_id_hex, reader="buyer-lyon")
        bundles["inclusion-order-against-height-3"] = node.inclusion_bundle(
            txs[1].tx_id_hex, reader="buyer-lyon")
        bundles["inclusion-genesis-tx-against-height-3"] = node.inclusion_bundle(
            genesis.tx.tx_id_hex, reader="buyer-lyon")
        bundles["inclusion-last-leaf-against-height-3"] = node.inclusion_bundle(
            txs[4].tx_id_hex, reader="buyer-lyon")
        consistency = {old: node.consistency_bundle(old) for old in (1, 3, 4, 6)}
        certificates = [store.certificate(h.height) for h in headers[1:]]
    return {"headers": headers, "certificates": certificates, "bundles": bundles,
            "consistency": consistency}


# -- block.json ----------------------------------------------------------------------------


def state_changes_entry(desc: str, prev: bytes,
                        changes: Sequence[tuple[str, bytes | None]]) -> dict[str, Any]:
    pairs = canonical_pairs(list(changes))
    return {
        "desc": desc,
        "prev_state_root": prev.hex(),
        "changes": [[k, None if v is None else v.decode("utf-8")] for k, v in changes],
        "changes_canonical": pairs.decode("utf-8"),
        "changes_digest": sha256(pairs).hex(),
        "state_root": state_root_step(prev, changes).hex(),
    }


def validators_wire(genesis: Genesis) -> dict[str, Any]:
    vs = validator_set(MemoryState(dict(genesis.state_writes)))  # type: ignore[arg-type]
    return {"node_keys": {org: {kid: pub.hex() for kid, pub in keys.items()}
                          for org, keys in sorted(vs.node_keys.items())},
            "threshold": vs.threshold}


def run_header(wire: Any) -> dict[str, Any]:
    try:
        BlockHeader.from_wire(wire)
    except MalformedRecord as exc:
        return {"stage": "header", **problem(exc)}
    return {"stage": "ok"}


def run_certificate(genesis: Genesis, header: Any, cert: Any) -> dict[str, Any]:
    vs = validator_set(MemoryState(dict(genesis.state_writes)))  # type: ignore[arg-type]
    try:
        verify_certificate(BlockHeader.from_wire(header), Certificate.from_wire(cert), vs)
    except MalformedRecord as exc:
        return {"stage": "certificate", **problem(exc)}
    except VerificationError as exc:
        return {"stage": "certificate", **problem(exc)}
    return {"stage": "ok"}


def run_genesis(text: str) -> dict[str, Any]:
    try:
        Genesis.from_bytes(text.encode("utf-8"))
    except MalformedRecord as exc:
        return {"stage": "genesis", **problem(exc)}
    except VerificationError as exc:
        return {"stage": "genesis", **problem(exc)}
    return {"stage": "ok"}


def block_document(genesis: Genesis, txs: Sequence[SignedTx], chain: dict[str, Any]
                   ) -> dict[str, Any]:
    headers: list[BlockHeader] = chain["headers"]
    certs: list[Certificate] = chain["certificates"]
    genesis_changes = sorted(genesis.state_writes.items())
    steps = [state_changes_entry("genesis: from the zero hash", bytes(32), genesis_changes)]
    state = MemoryState(dict(genesis.state_writes))  # type: ignore[arg-type]
    for number, indices in enumerate(BLOCKS, start=1):
        header = headers[number]
        ctx = BlockContext(chain_id=CHAIN_ID, height=number, time=header.time)
        execution = execute_block(state, [txs[i] for i in indices], ctx)
        assert not execution.refused
        changes = execution.state.sorted_changes()
        entry = state_changes_entry(f"block {number}", headers[number - 1].state_root, changes)
        assert entry["state_root"] == header.state_root.hex()
        steps.append(entry)
        state.apply(execution.state.writes)
    steps.append(state_changes_entry(
        "synthetic: a write and a deletion (null), keys sorted by code point",
        headers[-1].state_root,
        [("trade/order/PO-Z", canonical({"status": "open", "total": 1})),
         ("trade/order/PO-a", None)]))
    steps.append(state_changes_entry("synthetic: a block with no state changes",
                                     headers[-1].state_root, []))

    header_entries = []
    for number in range(1, len(headers)):
        header, cert = headers[number], certs[number - 1]
        assert cert is not None
        header_entries.append({
            "desc": f"block {number}",
            "header": header.to_wire(),
            "canonical": header.canonical_bytes().decode("utf-8"),
            "hash": header.hash.hex(),
            "checkpoint_signing_message": (Domain.CHECKPOINT.value + header.hash).hex(),
            "checkpoint_signers": {"platform": "platform/node",
                                   "supplier-sz": "supplier-sz/node"},
            "certificate": cert.to_wire(),
            "final": True,
            "signed": ["platform", "supplier-sz"],
            "missing": ["buyer-lyon"],
        })

    # Bad headers (BlockHeader.from_wire).
    h1 = headers[1].to_wire()
    bad_headers: list[dict[str, Any]] = []

    def bad_header(desc: str, change: Callable[[dict[str, Any]], None], field: str,
                   rule: str) -> None:
        wire = copy.deepcopy(h1)
        change(wire)
        case = {"desc": desc, "header": wire,
                "expected": {"stage": "header", "field": field, "rule": rule}}
        check_case(case, run_header(wire))
        bad_headers.append(case)

    def put(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(w: dict[str, Any]) -> None:
            w[name] = value
        return change

    bad_header("height-negative", put("height", -1), "header.height", "uint")
    bad_header("height-as-string", put("height", "1"), "header.height", "uint")
    bad_header("height-as-boolean", put("height", True), "header.height", "uint")
    bad_header("log-size-as-fraction", put("log_size", 3.5), "header.log_size", "uint")
    bad_header("prev-hash-upper-case", put("prev_hash", h1["prev_hash"].upper()),
               "header.prev_hash", "hex")
    bad_header("prev-hash-31-bytes", put("prev_hash", h1["prev_hash"][2:]), "header.prev_hash",
               "length")
    bad_header("time-with-offset", put("time", "2026-01-05T10:01:00+01:00"), "header.time",
               "rfc3339")
    bad_header("proposer-not-a-key-id", put("proposer", "platform"), "header.proposer",
               "format")
    bad_header("unknown-field", put("round", 0), "header.round", "unknown_field")

    def drop(name: str) -> Callable[[dict[str, Any]], None]:
        def change(w: dict[str, Any]) -> None:
            del w[name]
        return change

    bad_header("missing-state-root", drop("state_root"), "header.state_root", "required")

    # Bad certificates (verify_certificate with the genesis validator set).
    c1 = certs[0]
    assert c1 is not None
    cw = c1.to_wire()
    bad_certs: list[dict[str, Any]] = []

    def bad_cert(desc: str, cert: dict[str, Any], code: str, header: Any = None,
                 stage: str = "certificate") -> None:
        case = {"desc": desc, "header": header or h1, "certificate": cert,
                "expected": {"stage": stage, "code": code}}
        check_case(case, run_certificate(genesis, case["header"], cert))
        bad_certs.append(case)

    def cert_with(sigs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {**cw, "signatures": sigs, **extra}

    platform_sig, supplier_sig = cw["signatures"]
    bad_cert("one-signature-short", cert_with([platform_sig]), "not_final")
    second_platform = {"org": "platform", "key_id": K["platform/node"].key_id,
                       "signature": platform_sig["signature"]}
    bad_cert("same-organisation-twice", cert_with([platform_sig, second_platform]),
             "not_final")
    bad_cert("checkpoint-signature-bit-flipped-@0",
             cert_with([platform_sig, {**supplier_sig,
                                       "signature": flip(supplier_sig["signature"], 0)}]),
             "not_final")
    tx_domain = K["supplier-sz/node"].sign(Domain.TX, headers[1].hash).hex()
    bad_cert("checkpoint-signed-in-tx-domain",
             cert_with([platform_sig, {**supplier_sig, "signature": tx_domain}]), "not_final")
    admin_sig = sign_checkpoint(headers[1], K["supplier-sz/admin"], "supplier-sz").to_wire()
    bad_cert("checkpoint-by-admin-key-not-node-key", cert_with([platform_sig, admin_sig]),
             "not_final")
    bad_cert("signature-claims-another-organisation",
             cert_with([platform_sig, {**supplier_sig, "org": "buyer-lyon"}]), "not_final")
    bad_cert("certificate-for-another-height", cert_with(cw["signatures"], height=2),
             "bad_certificate")
    bad_cert("certificate-block-hash-bit-flipped-@31",
             cert_with(cw["signatures"], block_hash=flip(cw["block_hash"], 31)),
             "bad_certificate")
    h1_changed = {**h1, "time": "2026-01-05T09:01:01Z"}
    bad_cert("header-time-changed-under-certificate", cw, "bad_certificate", header=h1_changed)

    # Bad genesis files (Genesis.from_wire).
    gw = copy.deepcopy(genesis.to_wire())
    bad_genesis: list[dict[str, Any]] = []

    def bad_gen(desc: str, doc: dict[str, Any], expected: dict[str, Any]) -> None:
        text = canonical(doc).decode("utf-8")
        case = {"desc": desc, "genesis": text, "expected": {"stage": "genesis", **expected}}
        check_case(case, run_genesis(text))
        bad_genesis.append(case)

    bad_gen("wrong-version", {**gw, "version": "tradeledger-genesis/2"},
            {"field": "version", "rule": "version"})
    bad_gen("unknown-field", {**gw, "comment": "hello"},
            {"field": "comment", "rule": "unknown_field"})
    bad_gen("header-state-root-bit-flipped-@0",
            {**gw, "header": {**gw["header"],
                              "state_root": flip(gw["header"]["state_root"], 0)}},
            {"code": "bad_genesis"})
    bad_gen("header-log-root-bit-flipped-@0",
            {**gw, "header": {**gw["header"], "log_root": flip(gw["header"]["log_root"], 0)}},
            {"code": "bad_genesis"})
    bad_gen("header-height-1", {**gw, "header": {**gw["header"], "height": 1}},
            {"code": "bad_genesis"})
    doctored = copy.deepcopy(gw)
    doctored["transaction"]["body"]["payload"]["organisations"][2]["node_keys"] = [
        K["outsider"].public_key_hex]
    bad_gen("payload-node-key-replaced", doctored, {"code": "bad_genesis"})
    resigned = resign(doctored["transaction"], [K["platform/admin"]])
    bad_gen("payload-node-key-replaced-and-re-signed", {**doctored, "transaction": resigned},
            {"code": "bad_genesis"})
    other_founder = copy.deepcopy(gw["transaction"])
    other_founder["body"]["author"] = K["supplier-sz/admin"].key_id
    bad_gen("founder-is-not-the-platform-admin",
            {**gw, "transaction": resign(other_founder, [K["supplier-sz/admin"]])},
            {"code": "bad_genesis"})

    g_leaf = genesis.tx.leaf_bytes()
    return {
        "description": (
            "Genesis, block headers, checkpoints, certificates and state-root steps of the "
            "vector chain (specs/protocol.md#genesis, #blocks, #checkpoints-and-certificates). "
            "Hashes and signatures are lower-case hex; *_canonical members are the RFC 8785 "
            "bytes as UTF-8 text. Keys are those of tx.json (seed = SHA-256(\"" + SEED_PREFIX
            + "\" + label)). Every bad case must be refused with the stated field and rule "
            "(format errors) or code (verification errors)."),
        "provenance": (
            "Generated by specs/vectors/generate.py (regenerate: .venv/bin/python "
            "specs/vectors/generate.py) with ledger.chain.make_genesis and node.service."
            "LedgerNode over a temporary SQLite store, fixed clock, fixed Ed25519 seeds; "
            "the supplier-sz checkpoints are added with ledger.block.sign_checkpoint. "
            "Expected outcomes of bad cases are written by hand in the generator from "
            "specs/protocol.md and checked against the implementation when generating."),
        "genesis": {
            "desc": "three-organisation consortium, quorum 2 of 3",
            "founder": "platform/admin",
            "time": format_time(genesis.header.time),
            "description": description(),
            "file": gw,
            "file_canonical": genesis.to_bytes().decode("utf-8"),
            "tx_id": genesis.tx.tx_id_hex,
            "leaf": g_leaf.decode("utf-8"),
            "leaf_hash": merkle.leaf_hash(g_leaf).hex(),
            "hash": genesis.hash.hex(),
            "validators": validators_wire(genesis),
        },
        "state_root_steps": steps,
        "headers": header_entries,
        "bad_headers": bad_headers,
        "bad_certificates": bad_certs,
        "bad_genesis": bad_genesis,
    }


# -- bundle.json ---------------------------------------------------------------------------


def run_bundle(case: dict[str, Any], genesis_text: str) -> dict[str, Any]:
    genesis_bytes = case.get("genesis", genesis_text).encode("utf-8")
    try:
        if case["kind"] == "consistency":
            trusted = case.get("trusted_old_root")
            client_verify.verify_consistency_bundle(
                genesis_bytes, case["bundle"],
                None if trusted is None else bytes.fromhex(trusted))
        else:
            client_verify.verify_inclusion_bundle(genesis_bytes, case["bundle"])
    except client_verify.BundleError as exc:
        return {"stage": "rejected", "error": str(exc)}
    return {"stage": "ok"}


def bundle_document(genesis: Genesis, chain: dict[str, Any]) -> dict[str, Any]:
    genesis_text = genesis.to_bytes().decode("utf-8")
    headers: list[BlockHeader] = chain["headers"]
    inclusion = [{"desc": desc, "kind": "inclusion", "bundle": bundle,
                  "verified": {"tx_id": bundle["tx_id"], "leaf_index": bundle["leaf_index"],
                               "certified_height": bundle["header"]["height"],
                               "signed_by": ["platform", "supplier-sz"]}}
                 for desc, bundle in chain["bundles"].items()]
    roots = {h.log_size: h.log_root.hex() for h in headers}
    consistency = []
    for old, bundle in chain["consistency"].items():
        entry: dict[str, Any] = {"desc": f"consistency-{old}-to-6", "kind": "consistency",
                                 "bundle": bundle}
        if old in roots:
            entry["trusted_old_root"] = roots[old]
        consistency.append(entry)
    for entry in [*inclusion, *consistency]:
        outcome = run_bundle(entry, genesis_text)
        if outcome != {"stage": "ok"}:
            raise Disagreement(f"good bundle {entry['desc']} fails: {outcome}")

    order = chain["bundles"]["inclusion-order-against-height-3"]
    cons3 = chain["consistency"][3]
    bad: list[dict[str, Any]] = []

    def add(desc: str, bundle: dict[str, Any], error: str, *, kind: str = "inclusion",
            trusted_old_root: str | None = None, genesis_doc: str | None = None,
            known_bug: str | None = None) -> None:
        case: dict[str, Any] = {"desc": desc, "kind": kind, "bundle": bundle}
        if trusted_old_root is not None:
            case["trusted_old_root"] = trusted_old_root
        if genesis_doc is not None:
            case["genesis"] = genesis_doc
        case["expected"] = {"stage": "rejected", "error_contains": error}
        if known_bug:
            case["known_bug"] = known_bug
        outcome = run_bundle(case, genesis_text)
        rejected = outcome["stage"] == "rejected" and error in outcome.get("error", "")
        if known_bug:
            if outcome != {"stage": "ok"}:
                raise Disagreement(f"{desc}: known_bug but now rejected ({outcome}); "
                                   "drop the mark or fix the case")
        elif not rejected:
            raise Disagreement(f"bundle {desc}: expected rejection with {error!r}, "
                               f"got {outcome}")
        bad.append(case)

    def changed(base: dict[str, Any], path: Sequence[str | int], value: Any) -> dict[str, Any]:
        out = copy.deepcopy(base)
        target: Any = out
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return out

    def without(base: dict[str, Any], path: Sequence[str | int]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        target: Any = out
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return out

    # Inclusion bundles.
    add("version-changed", changed(order, ["version"], "tradeledger-proof/2"),
        "not a tradeledger-proof/1 inclusion bundle")
    add("kind-changed", changed(order, ["kind"], "consistency"),
        "not a tradeledger-proof/1 inclusion bundle")
    add("chain-id-changed", changed(order, ["chain_id"], "tl-elsewhere"),
        "bundle is for another chain")
    add("genesis-hash-bit-flipped-@0", changed(order, ["genesis_hash"],
                                               flip(order["genesis_hash"], 0)),
        "bundle names another genesis")
    add("leaf-modified-amount", changed(order, ["leaf"],
                                        order["leaf"].replace('"total":1250000',
                                                              '"total":1250001')),
        "root mismatch")
    add("leaf-signature-key-id-changed", changed(order, ["leaf"], order["leaf"].replace(
        K["supplier-sz/member"].key_id, K["supplier-sz/admin"].key_id)), "root mismatch")
    add("leaf-index-plus-one", changed(order, ["leaf_index"], order["leaf_index"] + 1),
        "root mismatch")
    add("leaf-index-beyond-log-size", changed(order, ["leaf_index"], 6),
        "outside a log of size 6")
    add("leaf-index-as-string", changed(order, ["leaf_index"], "2"),
        "leaf_index and log_size must be integers")
    add("inclusion-proof[0]-bit-flipped-@0",
        changed(order, ["inclusion_proof", 0], flip(order["inclusion_proof"][0], 0)),
        "root mismatch")
    add("inclusion-proof-last-hash-dropped",
        changed(order, ["inclusion_proof"], order["inclusion_proof"][:-1]),
        "inclusion proof is too short")
    add("inclusion-proof-extra-hash",
        changed(order, ["inclusion_proof"], [*order["inclusion_proof"], "00" * 32]),
        "inclusion proof has extra hashes")
    add("inclusion-proof-hash-upper-case",
        changed(order, ["inclusion_proof", 0], order["inclusion_proof"][0].upper()),
        "must be lower-case hex")
    add("tx-id-of-another-transaction",
        changed(order, ["tx_id"], chain["bundles"]["inclusion-last-leaf-against-height-3"]
                ["tx_id"]), "tx_id is not the hash of the leaf's body")
    add("header-log-root-bit-flipped-@0",
        changed(order, ["header", "log_root"], flip(order["header"]["log_root"], 0)),
        "certificate signs a different block hash")
    add("header-log-size-plus-one",
        changed(order, ["header", "log_size"], order["header"]["log_size"] + 1),
        "certificate signs a different block hash")
    add("header-extra-member", changed(order, ["header", "round"], 0),
        "certificate signs a different block hash")
    add("header-height-as-boolean", changed(order, ["header", "height"], True),
        "must be a string or an integer")
    add("header-of-height-2-with-certificate-of-height-3",
        changed(order, ["header"], headers[2].to_wire()), "certificate is for another height")
    add("header-replaced-by-genesis-header", {
        **changed(order, ["header"], headers[0].to_wire()),
        "certificate": {"height": 0, "block_hash": headers[0].hash.hex(), "signatures": []}},
        "outside a log of size 1")
    add("certificate-missing", without(order, ["certificate"]),
        "certificate is for another height")
    add("certificate-one-signature-dropped",
        changed(order, ["certificate", "signatures"], order["certificate"]["signatures"][:1]),
        "certificate signed by 1/2")
    sig0, sig1 = order["certificate"]["signatures"]
    add("certificate-same-organisation-twice",
        changed(order, ["certificate", "signatures"], [sig0, dict(sig0)]),
        "certificate signed by 1/2")
    add("certificate-signature[1]-bit-flipped-@5",
        changed(order, ["certificate", "signatures", 1, "signature"],
                flip(sig1["signature"], 5)), "certificate signed by 1/2")
    add("certificate-signature-claims-another-organisation",
        changed(order, ["certificate", "signatures", 1, "org"], "buyer-lyon"),
        "certificate signed by 1/2")
    header3 = headers[3]
    add("certificate-signature-in-tx-domain",
        changed(order, ["certificate", "signatures", 1, "signature"],
                K["supplier-sz/node"].sign(Domain.TX, header3.hash).hex()),
        "certificate signed by 1/2")
    add("certificate-signature-by-non-validator-key",
        changed(order, ["certificate", "signatures", 1],
                sign_checkpoint(header3, K["supplier-sz/admin"], "supplier-sz").to_wire()),
        "certificate signed by 1/2")
    add("certificate-block-hash-bit-flipped-@31",
        changed(order, ["certificate", "block_hash"],
                flip(order["certificate"]["block_hash"], 31)),
        "certificate signs a different block hash")
    add("certificate-height-changed", changed(order, ["certificate", "height"], 2),
        "certificate is for another height")

    # A doctored genesis file that keeps the real header (so the genesis hash a user may
    # have compared out of band still matches) but names the outsider's key as two
    # validators' node key; the outsider then certifies a forged header.
    forged_leaf = order["leaf"].replace('"total":1250000', '"total":9250000').encode()
    forged_log = [b"forged-0", b"forged-1", forged_leaf]
    forged_header = BlockHeader.from_wire({**order["header"], "log_size": 3,
                                           "log_root": merkle.root(forged_log).hex()})
    doc = copy.deepcopy(genesis.to_wire())
    for org in doc["transaction"]["body"]["payload"]["organisations"][1:]:
        org["node_keys"] = [K["outsider"].public_key_hex]
    forged_body = forged_leaf[len(b'{"body":'):forged_leaf.rfind(b',"signatures":')]
    forged = {
        **order,
        "leaf": forged_leaf.decode("utf-8"),
        "tx_id": sha256(forged_body).hex(),
        "leaf_index": 2,
        "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(forged_log, 2)],
        "header": forged_header.to_wire(),
        "certificate": Certificate(forged_header.height, forged_header.hash, (
            sign_checkpoint(forged_header, K["outsider"], "supplier-sz"),
            sign_checkpoint(forged_header, K["outsider"], "buyer-lyon"))).to_wire(),
    }
    add("genesis-file-validator-keys-replaced-header-kept", forged,
        "genesis header does not commit to its transaction", genesis_doc=canonical(doc)
        .decode("utf-8"))

    # Consistency bundles.
    root3 = roots[3]
    add("consistency-old-root-bit-flipped-@0",
        changed(cons3, ["old_root"], flip(cons3["old_root"], 0)),
        "does not lead to old_root", kind="consistency")
    add("consistency-old-root-not-the-trusted-root", cons3, "old_root is not the root you "
        "trusted", kind="consistency", trusted_old_root=flip(root3, 0))
    add("consistency-proof[0]-bit-flipped-@0",
        changed(cons3, ["consistency_proof", 0], flip(cons3["consistency_proof"][0], 0)),
        "does not lead to", kind="consistency", trusted_old_root=root3)
    add("consistency-proof-last-hash-dropped",
        changed(cons3, ["consistency_proof"], cons3["consistency_proof"][:-1]),
        "consistency proof is too short", kind="consistency", trusted_old_root=root3)
    add("consistency-proof-extra-hash",
        changed(cons3, ["consistency_proof"], [*cons3["consistency_proof"], "00" * 32]),
        "consistency proof has extra hashes", kind="consistency", trusted_old_root=root3)
    add("consistency-proof-empty", changed(cons3, ["consistency_proof"], []),
        "consistency proof is empty", kind="consistency", trusted_old_root=root3)
    add("consistency-old-size-minus-one", changed(cons3, ["old_size"], 2),
        "consistency proof has extra hashes", kind="consistency")
    add("consistency-old-size-zero", changed(cons3, ["old_size"], 0),
        "need 0 < old_size <= new_size", kind="consistency")
    add("consistency-old-size-beyond-new-size", changed(cons3, ["old_size"], 7),
        "need 0 < old_size <= new_size", kind="consistency")
    add("consistency-new-size-not-certified", changed(cons3, ["new_size"], 5),
        "new_size is not the certified log size", kind="consistency")
    add("consistency-header-log-root-bit-flipped-@0",
        changed(cons3, ["header", "log_root"], flip(cons3["header"]["log_root"], 0)),
        "certificate signs a different block hash", kind="consistency")
    add("consistency-certificate-one-signature-dropped",
        changed(cons3, ["certificate", "signatures"], cons3["certificate"]["signatures"][:1]),
        "certificate signed by 1/2", kind="consistency")
    add("consistency-equal-sizes-with-a-proof",
        changed(chain["consistency"][6], ["consistency_proof"], ["00" * 32]),
        "consistency proof for equal sizes must be empty", kind="consistency")
    cons1 = chain["consistency"][1]
    add("consistency-old-size-as-boolean", changed(cons1, ["old_size"], True),
        "need 0 < old_size <= new_size", kind="consistency", trusted_old_root=roots[1])
    add("consistency-equal-sizes-other-root",
        changed(chain["consistency"][6], ["old_root"], flip(roots[6], 0)),
        "equal sizes with different roots", kind="consistency")

    return {
        "description": (
            "Proof bundles served by node.service.LedgerNode for the vector chain, verified "
            "offline by client/verify.py against the genesis file `genesis` "
            "(specs/protocol.md#proof-bundles, #verifying-a-proof-bundle). Every good bundle "
            "MUST verify; every bad case (a good bundle with the mutation named in its desc, "
            "or the good bundle checked against another trusted root or genesis file) MUST "
            "be rejected. error_contains is the reference verifier's message; another "
            "implementation need only reject. A case marked known_bug is a defect of the "
            "reference implementation: the protocol requires the rejection, the code does "
            "not yet perform it."),
        "provenance": (
            "Generated by specs/vectors/generate.py (regenerate: .venv/bin/python "
            "specs/vectors/generate.py): the chain of block.json, built by "
            "node.service.LedgerNode over a temporary SQLite store with a fixed clock; "
            "bundles from LedgerNode.inclusion_bundle and LedgerNode.consistency_bundle; "
            "mutations applied by hand, each checked against client/verify.py."),
        "genesis": genesis_text,
        "inclusion": inclusion,
        "consistency": consistency,
        "bad": bad,
    }


# -- tx.json -------------------------------------------------------------------------------


def tx_document(genesis: Genesis, txs: Sequence[tuple[str, SignedTx]]) -> dict[str, Any]:
    signers = {
        "key-enrol-one-signature": ["supplier-sz/admin"],
        "trade-order-two-signatures-fractional-time": ["buyer-lyon/member",
                                                       "supplier-sz/member"],
        "trade-invoice-non-ascii-payload": ["supplier-sz/member"],
        "trade-invoice-ack": ["buyer-lyon/member"],
        "trade-payment-ttl-24h": ["buyer-lyon/member"],
    }
    good = dict(txs)
    valid = [tx_entry(desc, tx, signers[desc]) for desc, tx in txs]
    for entry in valid:
        outcome = run_tx_stages(entry)
        if outcome != {"stage": "ok"}:
            raise Disagreement(f"{entry['desc']}: {outcome}")
    bad = bad_transactions(good)
    for case in bad:
        check_case(case, run_tx_stages(case))
    equivalent = equivalent_transactions(good)
    for case in equivalent:
        tx = SignedTx.from_bytes(case["text"].encode("utf-8"))
        assert tx.tx_id_hex == case["tx_id"]
    return {
        "description": (
            "Transactions (specs/protocol.md#transactions). wire is the JSON a client "
            "submits; body_canonical is RFC 8785 of wire.body as UTF-8 text; tx_id = "
            "SHA-256(body_canonical); signing_messages[i] = DOMAIN_TX || tx_id, the bytes "
            "signatures[i] (Ed25519, RFC 8032) covers; leaf is the Merkle leaf data "
            "(canonical {body, signatures}); leaf_hash = SHA-256(0x00 || leaf). Bad cases "
            "name their mutation; `@k` means the lowest bit of byte k was flipped. A bad "
            "case gives `wire` (a JSON value) or `text` (raw JSON text, for what a JSON "
            "value cannot hold) and the first check that must refuse it: decode (strict "
            "parsing), wire (the wire format; field and rule), payload (the type's payload "
            "model, as the node checks at intake; field and rule) or signature (code); "
            "signature checks use every key whose `enrolled` is true. execution cases run "
            "as block 1 on the genesis state of block.json and give each transaction's "
            "outcome: accepted or its rejection code. A case marked known_bug is a defect "
            "of the reference implementation."),
        "provenance": (
            "Generated by specs/vectors/generate.py (regenerate: .venv/bin/python "
            "specs/vectors/generate.py) with ledger.tx.make_body/sign_tx and PyNaCl "
            "(deterministic Ed25519) from seeds SHA-256(\"" + SEED_PREFIX + "\" + label) and "
            "fixed times. Expected outcomes of bad cases are written by hand in the "
            "generator from specs/protocol.md and checked against the implementation."),
        "chain_id": CHAIN_ID,
        "domains": [{"name": d.name.lower(), "prefix_text": d.value.decode("ascii")
                     .replace("\x00", "\\0"), "prefix_hex": d.value.hex()} for d in Domain],
        "keys": [{"label": label, "seed": seed_of(label).hex(),
                  "public_key": K[label].public_key_hex, "key_id": K[label].key_id,
                  "enrolled": enrolled} for label, enrolled in KEY_LABELS.items()],
        "valid": valid,
        "equivalent": equivalent,
        "bad": bad,
        "execution": execution_cases(genesis),
    }


# -- confidential.json ---------------------------------------------------------------------


def x25519(label: str) -> EncryptionKey:
    return EncryptionKey(seed_of(label))


def sealed_box(plaintext: bytes, recipient: bytes, ephemeral: EncryptionKey) -> bytes:
    """libsodium's crypto_box_seal with a given ephemeral key, so the vector is reproducible.

    ``epk || crypto_box_easy(m, nonce = BLAKE2b-192(epk || pk), pk, esk)``. Real sealing
    (:func:`ledger.confidential.seal`) draws a fresh ephemeral key for every box.
    """
    nonce = nacl.bindings.crypto_generichash_blake2b_salt_personal(
        ephemeral.public_key + recipient, digest_size=nacl.bindings.crypto_box_NONCEBYTES)
    return ephemeral.public_key + nacl.bindings.crypto_box_easy(plaintext, nonce, recipient,
                                                                ephemeral.secret)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def run_open(case: dict[str, Any], keys: Mapping[str, EncryptionKey]) -> dict[str, Any]:
    try:
        details = open_sealed(case["confidential"], case["org"], keys[case["key"]])
    except MalformedRecord as exc:
        return {"stage": "shape", **problem(exc)}
    except VerificationError as exc:
        return {"stage": "open", **problem(exc)}
    return {"stage": "ok", "details": details}


def confidential_document() -> dict[str, Any]:
    parties = ("buyer-lyon", "supplier-sz")
    keys = {org: x25519(f"{org}/encryption") for org in (*parties, "platform")}
    salt = seed_of("confidential/salt")
    details = {
        "line_items": [
            {"sku": "SZ-OLED-61", "description": "6.1-inch OLED display module",
             "quantity": 400, "unit": "EA", "unit_price": 2500},
            {"sku": "SZ-USBC-PD65", "description": "65 W USB-C PD charger, Ladegerät",
             "quantity": 500, "unit": "EA", "unit_price": 500},
        ],
        "bank_terms": {"bank": "Harbour Bank Asia", "account": "HK-012-883-204417-001"},
    }
    plaintext = committed_plaintext(details, salt)
    commitment = commitment_of(plaintext)
    # The reference's seal gives the same commitment for the same salt.
    assert seal(details, {o: keys[o].public_key for o in parties}, salt=salt)[
        "commitment"] == commitment

    def boxes(message: bytes, tag: str = "") -> dict[str, bytes]:
        return {org: sealed_box(message, keys[org].public_key,
                                x25519(f"confidential/ephemeral/{org}{tag}"))
                for org in parties}

    sealed = boxes(plaintext)
    wire = {"commitment": commitment, "sealed": {o: b64(c) for o, c in sealed.items()}}
    recipients = []
    for org in parties:
        ephemeral = x25519(f"confidential/ephemeral/{org}")
        recipients.append({
            "org": org, "secret_key": keys[org].secret.hex(),
            "public_key": keys[org].public_key_hex,
            "ephemeral_secret_key": ephemeral.secret.hex(),
            "ephemeral_public_key": ephemeral.public_key_hex,
            "nonce": nacl.bindings.crypto_generichash_blake2b_salt_personal(
                ephemeral.public_key + keys[org].public_key, digest_size=24).hex(),
            "sealed": wire["sealed"][org],
        })
        assert open_sealed(wire, org, keys[org]) == details

    bad: list[dict[str, Any]] = []

    def add(desc: str, confidential: dict[str, Any], expected: dict[str, Any], *,
            org: str = "buyer-lyon", key: str | None = None) -> None:
        case = {"desc": desc, "confidential": confidential, "org": org, "key": key or org,
                "expected": expected}
        check_case(case, run_open(case, keys))
        bad.append(case)

    def with_copy(org: str, box: bytes) -> dict[str, Any]:
        return {**wire, "sealed": {**wire["sealed"], org: b64(box)}}

    def flipped(data: bytes, byte: int) -> bytes:
        raw = bytearray(data)
        raw[byte] ^= 0x01
        return bytes(raw)

    unreadable = {"stage": "open", "code": "unreadable"}
    mismatch = {"stage": "open", "code": "commitment_mismatch"}
    bad_plaintext = {"stage": "open", "code": "bad_plaintext"}
    box = sealed["buyer-lyon"]
    add("sealed[buyer-lyon]-ciphertext-bit-flipped-@40", with_copy("buyer-lyon",
        flipped(box, 40)), unreadable)
    add("sealed[buyer-lyon]-mac-bit-flipped-@32", with_copy("buyer-lyon", flipped(box, 32)),
        unreadable)
    add("sealed[buyer-lyon]-ephemeral-key-bit-flipped-@0",
        with_copy("buyer-lyon", flipped(box, 0)), unreadable)
    add("sealed[buyer-lyon]-truncated-to-47-bytes", with_copy("buyer-lyon", box[:47]),
        unreadable)
    add("copy-sealed-to-supplier-sz-filed-under-buyer-lyon",
        with_copy("buyer-lyon", sealed["supplier-sz"]), unreadable)
    add("opened-with-another-organisations-key", wire, unreadable, key="supplier-sz")
    add("no-copy-for-the-organisation", wire, {"stage": "open", "code": "not_addressed"},
        org="platform")
    add("commitment-bit-flipped-@0", {**wire, "commitment": flip(commitment, 0)}, mismatch)
    add("commitment-without-the-domain-prefix",
        {**wire, "commitment": sha256(plaintext).hex()}, mismatch)
    add("commitment-of-the-unsalted-details",
        {**wire, "commitment": sha256(COMMITMENT_DOMAIN + canonical(details)).hex()},
        mismatch)
    cheaper = copy.deepcopy(details)
    cheaper["line_items"][0]["unit_price"] = 2400
    add("other-details-sealed-under-the-same-commitment",
        with_copy("buyer-lyon", boxes(committed_plaintext(cheaper, salt), "/b")["buyer-lyon"]),
        mismatch)
    spaced = json.dumps({"details": details, "salt": salt.hex()}).encode("utf-8")
    add("plaintext-not-canonical-committed-as-sent",
        {"commitment": commitment_of(spaced),
         "sealed": {"buyer-lyon": b64(boxes(spaced, "/c")["buyer-lyon"])}}, bad_plaintext)
    short = canonical({"details": details, "salt": salt[:16].hex()})
    add("salt-of-16-bytes-committed-as-sent",
        {"commitment": commitment_of(short),
         "sealed": {"buyer-lyon": b64(boxes(short, "/d")["buyer-lyon"])}}, bad_plaintext)
    bare = canonical(details)
    add("details-without-salt-wrapper-committed-as-sent",
        {"commitment": commitment_of(bare),
         "sealed": {"buyer-lyon": b64(boxes(bare, "/e")["buyer-lyon"])}}, bad_plaintext)
    add("commitment-upper-case-hex", {**wire, "commitment": commitment.upper()},
        {"stage": "shape", "field": "confidential.commitment", "rule": "string_pattern_mismatch"})
    add("sealed-copy-not-base64", {**wire, "sealed": {"buyer-lyon": "not base64!"}},
        {"stage": "shape", "field": "confidential.sealed", "rule": "value_error"})
    return {
        "description": (
            "Sealed trade details (specs/trade.md#confidential-details). plaintext = RFC 8785 "
            "canonical {\"details\", \"salt\": hex(32 bytes)} as UTF-8 text; commitment = "
            "SHA-256(commitment_domain || plaintext); each sealed[org] = base64 of libsodium "
            "crypto_box_seal(plaintext, public_key of org) = ephemeral_public_key || "
            "crypto_box_easy(plaintext, nonce, public_key, ephemeral_secret_key) with nonce = "
            "BLAKE2b-192(ephemeral_public_key || public_key). A real sealer draws a fresh "
            "ephemeral key per box, so only opening is reproducible in general; these boxes "
            "use fixed ephemeral keys. Bad cases are opened by `org` with the secret key of "
            "`key` and give the first failing step: shape (the wire object; field and rule) "
            "or open (code: not_addressed, unreadable, commitment_mismatch, bad_plaintext)."),
        "provenance": (
            "Generated by specs/vectors/generate.py with ledger.confidential and PyNaCl "
            "(libsodium); X25519 secret keys, ephemeral keys and the salt are SHA-256(\"" +
            SEED_PREFIX + "\" + label). Each good box is checked to open with "
            "crypto_box_seal_open; expected outcomes of bad cases are written by hand."),
        "commitment_domain_hex": COMMITMENT_DOMAIN.hex(),
        "details": details,
        "salt": salt.hex(),
        "plaintext": plaintext.decode("utf-8"),
        "commitment": commitment,
        "recipients": recipients,
        "confidential": wire,
        "outsider": {"org": "platform", "secret_key": keys["platform"].secret.hex(),
                     "public_key": keys["platform"].public_key_hex},
        "bad": bad,
    }


# -- entry points --------------------------------------------------------------------------


# -- rating.json ---------------------------------------------------------------------------

RATING_CHAIN_ID = "tl-vectors-ratings"


def rating_transactions() -> list[list[SignedTx]]:
    """Blocks 1-3 of the rating chain: an order, three USD invoices, four payment parts.

    As of the block date 2026-01-05 (specs/ratings.md section 2), by hand:
    A 100,000 due 2025-12-01 paid on the day (v 80); B 200,000 due 2025-12-10 paid
    2025-12-25 (d 15, v 70); C 100,000 due 2025-12-20, 50,000 paid 2025-12-01 (d -19,
    v 89.5) and 50,000 open (d 16, v 480/7). Score = round_half_up(29,903,571.43 /
    400,000) = round_half_up(74.76) = 75, band medium; days beyond terms (200,000 x 15
    + 50,000 x 16) / 400,000 = 9.5 -> 10; within terms 150,000 / 400,000 -> 38 %; worst
    delay 16 (the open part).
    """
    hour = timedelta(hours=1)
    seller, buyer = K["supplier-sz/member"], K["buyer-lyon/member"]
    n = 0

    def tx(tx_type: str, payload: dict[str, Any], author: SigningKey, seconds: float,
           *cosigners: SigningKey) -> SignedTx:
        nonlocal n
        n += 1
        return sign_tx(make_body(tx_type=tx_type, chain_id=RATING_CHAIN_ID, author=author,
                                 payload=payload, nonce=f"rating-{n:04d}",
                                 created_at=at(seconds), ttl=hour), [author, *cosigners])

    order = tx("trade.order", {"order_id": "PO-R-1", "buyer": "buyer-lyon",
                               "seller": "supplier-sz", "currency": "USD",
                               "total": 1_000_000}, buyer, 30, seller)
    invoices = [tx("trade.invoice", {"invoice_id": inv, "order_id": "PO-R-1",
                                     "amount": amount, "currency": "USD",
                                     "issue_date": "2025-11-01", "due_date": due,
                                     "payment_terms": "NET30"}, seller, 90 + i)
                for i, (inv, amount, due) in enumerate([("INV-R-A", 100_000, "2025-12-01"),
                                                        ("INV-R-B", 200_000, "2025-12-10"),
                                                        ("INV-R-C", 100_000, "2025-12-20")])]
    payments = [tx("trade.payment", {"payment_id": pay, "invoice_id": inv, "amount": amount,
                                     "currency": "USD", "value_date": day}, buyer, 150 + i)
                for i, (pay, inv, amount, day) in enumerate([
                    ("PAY-R-A", "INV-R-A", 100_000, "2025-12-01"),
                    ("PAY-R-B", "INV-R-B", 200_000, "2025-12-25"),
                    ("PAY-R-C1", "INV-R-C", 50_000, "2025-12-01")])]
    return [[order], invoices, payments]


def run_attestation(genesis_text: str, attestation_text: str) -> dict[str, Any]:
    try:
        verified = client_verify.verify_rating_attestation(genesis_text.encode("utf-8"),
                                                           attestation_text.encode("utf-8"))
    except client_verify.BundleError as exc:
        return {"stage": "rejected", "error": str(exc)}
    return {"stage": "ok", "buyer": verified.buyer, "status": verified.status,
            "score": verified.score, "band": verified.band, "height": verified.height,
            "as_of": verified.as_of, "certified_by": list(verified.certified_by)}


def rating_document() -> dict[str, Any]:
    desc = {**description(), "chain_id": RATING_CHAIN_ID,
            "name": "TradeLedger rating test-vector consortium",
            "policy": {"ratings": {"supplier_cap_percent": 100}}}
    genesis = make_genesis(desc, founder=K["platform/admin"], time=T0)
    genesis_text = genesis.to_bytes().decode("utf-8")
    attestations: dict[str, dict[str, Any]] = {}
    with vector_node(genesis) as (node, store):
        for number, block in enumerate(rating_transactions(), start=1):
            cut_vector_block(node, store, number, block)
        for name, buyer in (("rated-partial-payment-and-open-amount", "buyer-lyon"),
                            ("insufficient-no-invoices", "supplier-sz")):
            attestations[name] = read_attestation(node, buyer)
    rated = attestations["rated-partial-payment-and-open-amount"]
    by_hand = {"score": 75, "band": "medium", "days_beyond_terms": 10,
               "within_terms_percent": 38, "worst_delay_days": 16}
    got = {**rated["statement"], **rated["statement"]["factors"]}
    if {k: got[k] for k in by_hand} != by_hand:
        raise Disagreement(f"rated attestation: expected {by_hand} by hand, got {got}")
    good = []
    for name, att in attestations.items():
        text = canonical(att).decode("utf-8")
        stmt = canonical(att["statement"])
        entry = {"desc": name, "attestation_canonical": text,
                 "statement_canonical": stmt.decode("utf-8"),
                 "signing_message": (Domain.ATTESTATION.value + stmt).hex(),
                 "verified": run_attestation(genesis_text, text)}
        if entry["verified"]["stage"] != "ok":
            raise Disagreement(f"good attestation {name} fails: {entry['verified']}")
        good.append(entry)

    bad: list[dict[str, Any]] = []

    def add(desc_: str, doc: dict[str, Any] | str, error: str) -> None:
        text = doc if isinstance(doc, str) else canonical(doc).decode("utf-8")
        outcome = run_attestation(genesis_text, text)
        if outcome["stage"] != "rejected" or error not in outcome["error"]:
            raise Disagreement(f"attestation {desc_}: expected rejection with {error!r}, "
                               f"got {outcome}")
        bad.append({"desc": desc_, "attestation_canonical": text,
                    "expected": {"stage": "rejected", "error_contains": error}})

    def changed(path: Sequence[str | int], value: Any, *, resign: bool = False
                ) -> dict[str, Any]:
        out = copy.deepcopy(rated)
        target: Any = out
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        if resign:
            out["signature"] = K["platform/node"].sign(
                Domain.ATTESTATION, canonical(out["statement"])).hex()
        return out

    stmt = rated["statement"]
    sigs = rated["certificate"]["signatures"]
    add("statement-score-changed", changed(["statement", "score"], 86),
        "signature on the statement does not verify")
    add("statement-factor-changed", changed(["statement", "factors", "worst_delay_days"], 1),
        "signature on the statement does not verify")
    add("signature-bit-flipped-@0", changed(["signature"], flip(rated["signature"], 0)),
        "signature on the statement does not verify")
    add("signed-by-another-genesis-node-key", changed(
        ["statement", "key_id"], K["supplier-sz/node"].key_id),
        "is not a node key of organisation 'platform'")
    add("signed-by-a-member-key", changed(["statement", "key_id"],
                                          K["supplier-sz/member"].key_id),
        "is not a node key of organisation 'platform'")
    add("resigned-score-outside-its-band", changed(["statement", "score"], 85, resign=True),
        "is not the band of score 85")
    add("resigned-as-of-another-day", changed(["statement", "as_of"], "2026-01-06",
                                              resign=True),
        "as_of is not the header's date")
    add("resigned-height-changed", changed(["statement", "height"], stmt["height"] - 1,
                                           resign=True),
        "height is not the header's")
    add("resigned-other-chain", changed(["statement", "chain_id"], CHAIN_ID, resign=True),
        "statement is for another chain")
    add("header-time-changed", changed(["header", "time"], "2026-01-05T09:03:01Z"),
        "the header is not the one the statement names")
    add("certificate-signature-bit-flipped-@0", changed(
        ["certificate", "signatures", 1, "signature"], flip(sigs[1]["signature"], 0)),
        "certificate.signatures[1] does not verify")
    add("certificate-below-quorum", changed(["certificate", "signatures"], sigs[:1]),
        "certificate signed by 1/2 required validator organisations")
    add("certificate-for-another-height", changed(["certificate", "height"],
                                                  stmt["height"] - 1),
        "certificate is for another height")
    add("extra-member", changed(["note"], "trust me"), "unexpected members ['note']")
    add("not-canonical-indented", json.dumps(rated, indent=1), "not in its canonical")
    add("version-changed", changed(["version"], "tradeledger-rating-attestation/2"),
        "not a tradeledger-rating-attestation/1 attestation")
    return {
        "description": "Rating attestations (specs/ratings.md#attestation) served by a real "
                       "node over a three-block trade history, the bytes a node signs, and "
                       "falsified attestations the offline verifier must refuse.",
        "provenance": "specs/vectors/generate.py: keys from fixed seeds, fixed block times, "
                      "the node's read_attestation over a temporary SQLite store; the "
                      "second validator's checkpoint added as a peer would add it. The "
                      "rated score (75, medium) and factors are checked against the hand computation "
                      "in rating_transactions().",
        "genesis": genesis_text,
        "signing_domain": Domain.ATTESTATION.value.hex(),
        "attestations": good,
        "bad": bad,
    }


def build() -> dict[str, dict[str, Any]]:
    """The vector documents, by file name."""
    genesis = make_genesis(description(), founder=K["platform/admin"], time=T0)
    txs = good_transactions()
    chain = build_chain(genesis, [tx for _d, tx in txs])
    return {
        "tx.json": tx_document(genesis, txs),
        "block.json": block_document(genesis, [tx for _d, tx in txs], chain),
        "bundle.json": bundle_document(genesis, chain),
        "confidential.json": confidential_document(),
        "rating.json": rating_document(),
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a vector file differs from what would be generated")
    args = parser.parse_args(argv)
    documents = build()
    stale = []
    for name in FILES:
        text = render(documents[name])
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
