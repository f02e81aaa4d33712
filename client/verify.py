"""Offline verification of proof bundles against a genesis file.

Needs nothing but PyNaCl and the standard library, so a bank, an auditor or
a consumer's app can check a record without trusting the node that served it
(ARCHITECTURE decision 4). Deliberately independent of ``ledger/``: it is a
second implementation of specs/protocol.md#verifying-a-proof-bundle.

Steps for an inclusion bundle:

1. Read the genesis file: its header hash is the chain's identity; the
   validators' node keys and the quorum come from its founding transaction.
2. The bundle's chain id and genesis hash must be those of the genesis file.
3. The header must carry the chain id; its hash is SHA-256 of its canonical
   form (flat strings and integers: sorted keys, no spaces).
4. The certificate must sign that hash with node keys of at least
   ``threshold`` distinct validator organisations.
5. The leaf's RFC 9162 inclusion proof must lead to the header's ``log_root``
   at ``log_size``.
6. The leaf's body hashes to the bundle's ``tx_id``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions

CHECKPOINT_DOMAIN = b"tradeledger/v1/checkpoint\x00"
BUNDLE_VERSION = "tradeledger-proof/1"
GENESIS_VERSION = "tradeledger-genesis/1"


class BundleError(Exception):
    """The bundle does not verify; the message says which step failed.

    A bundle that fails may have been modified, maliciously or by accident:
    do not rely on the record it carries.
    """


@dataclass(frozen=True)
class TrustAnchor:
    chain_id: str
    genesis_hash: bytes
    node_keys: dict[str, dict[str, bytes]]  # validator org -> key id -> public key
    threshold: int
    # Every organisation's node keys in genesis (validators or not).
    org_node_keys: dict[str, dict[str, bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedRecord:
    """What a verified inclusion bundle proves.

    ``leaf_index`` and the record are proven; ``height`` (the block the node
    says holds the record) is as stated by the bundle, not proven by it.
    """

    tx_id: str
    height: int
    leaf_index: int
    body: dict[str, Any]
    signatures: list[dict[str, str]]
    certified_height: int
    signed_by: tuple[str, ...]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _flat_canonical(obj: dict[str, Any]) -> bytes:
    """RFC 8785 for a flat object of strings and integers (headers)."""
    for key, value in obj.items():
        if not isinstance(key, str) or not key.isascii():
            raise BundleError(f"header member {key!r} is not an ASCII name")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BundleError(f"header member {key!r} must be a string or an integer")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or value != value.lower():
        raise BundleError(f"{what} must be lower-case hex")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise BundleError(f"{what} is not hex") from exc
    if size is not None and len(raw) != size:
        raise BundleError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def _key_id(public: bytes) -> str:
    return _sha256(public)[:16].hex()


def load_anchor(genesis_bytes: bytes) -> TrustAnchor:
    """Step 1: the trust anchor from a genesis file's bytes.

    The file must be byte-exact as the consortium published it (canonical
    JSON): the founding transaction's bytes are then exactly the Merkle leaf
    the genesis header commits to, so the validator keys read from it are
    the ones the genesis hash covers.
    """
    prefix, middle = b'{"header":', b',"transaction":'
    suffix = b',"version":"' + GENESIS_VERSION.encode() + b'"}'
    start = genesis_bytes.find(middle)
    if not genesis_bytes.startswith(prefix) or start < 0 or not genesis_bytes.endswith(suffix):
        raise BundleError("genesis file is not in its canonical published form")
    leaf = genesis_bytes[start + len(middle):len(genesis_bytes) - len(suffix)]
    try:
        doc = json.loads(genesis_bytes)
        if doc.get("version") != GENESIS_VERSION or set(doc) != {"version", "header",
                                                                 "transaction"}:
            raise BundleError(f"not a {GENESIS_VERSION} file")
        header = doc["header"]
        if json.loads(leaf) != doc["transaction"]:
            raise BundleError("genesis transaction bytes are not where they should be")
        payload = doc["transaction"]["body"]["payload"]
        validators = payload["quorum"]["validators"]
        threshold = payload["quorum"]["threshold"]
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise BundleError("quorum threshold must be a positive integer")
        orgs = {o["id"]: o for o in payload["organisations"]}
        org_node_keys = {o: {_key_id(_hex(k, "node key", 32)): _hex(k, "node key", 32)
                             for k in org.get("node_keys", [])} for o, org in orgs.items()}
        node_keys = {v: org_node_keys[v] for v in validators}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"genesis file is malformed: {exc}") from exc
    if not isinstance(header, dict) or header.get("height") != 0:
        raise BundleError("genesis header must be at height 0")
    # The header commits to the founding transaction: a one-leaf log whose
    # root is that leaf's hash (RFC 9162: the root of one leaf is its hash).
    if header.get("log_size") != 1 or _hex(header.get("log_root"), "genesis log_root", 32) \
            != _sha256(b"\x00" + leaf):
        raise BundleError("genesis header does not commit to its transaction")
    return TrustAnchor(header["chain_id"], _sha256(_flat_canonical(header)), node_keys,
                       threshold, org_node_keys)


def verify_header(anchor: TrustAnchor, header: dict[str, Any],
                  certificate: dict[str, Any]) -> tuple[bytes, tuple[str, ...]]:
    """Steps 3-4: the header's hash and the organisations that certified it."""
    if not isinstance(header, dict) or header.get("chain_id") != anchor.chain_id:
        raise BundleError("header is for another chain")
    header_hash = _sha256(_flat_canonical(header))
    if header.get("height") == 0:
        if header_hash != anchor.genesis_hash:
            raise BundleError("height-0 header is not the genesis header")
        return header_hash, ("genesis",)
    if not isinstance(certificate, dict):
        raise BundleError("certificate is missing")
    if certificate.get("height") != header.get("height"):
        raise BundleError("certificate is for another height")
    if _hex(certificate.get("block_hash"), "certificate.block_hash", 32) != header_hash:
        raise BundleError("certificate signs a different block hash than the header's")
    signed: list[str] = []
    for sig in certificate.get("signatures", []):
        org = sig.get("org")
        public = anchor.node_keys.get(org, {}).get(sig.get("key_id"))
        if public is None or org in signed:
            continue
        raw = _hex(sig.get("signature"), "certificate signature", 64)
        try:
            nacl.bindings.crypto_sign_open(raw + CHECKPOINT_DOMAIN + header_hash, public)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            continue
        signed.append(org)
    if len(signed) < anchor.threshold:
        raise BundleError(f"certificate signed by {len(signed)}/{anchor.threshold} required "
                          "validator organisations")
    return header_hash, tuple(signed)


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def root_from_inclusion(leaf_hash: bytes, index: int, size: int,
                        proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, steps 1-5."""
    if not 0 <= index < size:
        raise BundleError(f"leaf index {index} is outside a log of size {size}")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise BundleError("inclusion proof has extra hashes")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise BundleError("inclusion proof is too short")
    return r


def verify_inclusion_bundle(genesis_bytes: bytes, bundle: dict[str, Any]) -> VerifiedRecord:
    """Run every step on an inclusion bundle; raise :class:`BundleError` on any failure."""
    anchor = load_anchor(genesis_bytes)
    try:
        if bundle.get("version") != BUNDLE_VERSION or bundle.get("kind") != "inclusion":
            raise BundleError(f"not a {BUNDLE_VERSION} inclusion bundle")
        # Step 2.
        if bundle.get("chain_id") != anchor.chain_id:
            raise BundleError("bundle is for another chain")
        if _hex(bundle.get("genesis_hash"), "genesis_hash", 32) != anchor.genesis_hash:
            raise BundleError("bundle names another genesis")
        header = bundle["header"]
        # Steps 3-4.
        _, signed_by = verify_header(anchor, header, bundle.get("certificate", {}))
        # Step 5.
        leaf = bundle["leaf"]
        if not isinstance(leaf, str):
            raise BundleError("leaf must be a string")
        leaf_bytes = leaf.encode("utf-8")
        index, size = bundle["leaf_index"], header["log_size"]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (index, size)):
            raise BundleError("leaf_index and log_size must be integers")
        proof = [_hex(h, "inclusion_proof entry", 32) for h in bundle["inclusion_proof"]]
        computed = root_from_inclusion(_sha256(b"\x00" + leaf_bytes), index, size, proof)
        if computed != _hex(header["log_root"], "header.log_root", 32):
            raise BundleError(f"root mismatch: header says {header['log_root']}, "
                              f"proof gives {computed.hex()}")
        # Step 6. The leaf is canonical {"body":B,"signatures":S}; S holds only
        # hex strings, so the last ',"signatures":' splits it exactly.
        prefix, marker = b'{"body":', b',"signatures":'
        cut = leaf_bytes.rfind(marker)
        if not leaf_bytes.startswith(prefix) or cut < 0 or not leaf_bytes.endswith(b"}"):
            raise BundleError("leaf is not a transaction")
        body_bytes = leaf_bytes[len(prefix):cut]
        if _sha256(body_bytes).hex() != bundle["tx_id"]:
            raise BundleError("tx_id is not the hash of the leaf's body")
        parsed = json.loads(leaf_bytes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"bundle is malformed: {exc!r}") from exc
    return VerifiedRecord(bundle["tx_id"], bundle["height"], index, parsed["body"],
                          parsed["signatures"], header["height"], signed_by)


def verify_consistency_bundle(genesis_bytes: bytes, bundle: dict[str, Any],
                              trusted_old_root: bytes | None = None) -> None:
    """Check that the certified log extends the log of ``old_size``.

    Pass the root you saw before as ``trusted_old_root``; otherwise the
    bundle's own ``old_root`` is only shown to be consistent.
    """
    anchor = load_anchor(genesis_bytes)
    try:
        if bundle.get("version") != BUNDLE_VERSION or bundle.get("kind") != "consistency":
            raise BundleError(f"not a {BUNDLE_VERSION} consistency bundle")
        if bundle.get("chain_id") != anchor.chain_id or _hex(
                bundle.get("genesis_hash"), "genesis_hash", 32) != anchor.genesis_hash:
            raise BundleError("bundle is for another chain")
        header = bundle["header"]
        verify_header(anchor, header, bundle.get("certificate", {}))
        old_size, new_size = bundle["old_size"], bundle["new_size"]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (old_size, new_size)):
            raise BundleError("need 0 < old_size <= new_size, both integers")
        if new_size != header["log_size"]:
            raise BundleError("new_size is not the certified log size")
        old_root = _hex(bundle["old_root"], "old_root", 32)
        if trusted_old_root is not None and old_root != trusted_old_root:
            raise BundleError("old_root is not the root you trusted")
        proof = [_hex(h, "consistency_proof entry", 32) for h in bundle["consistency_proof"]]
        _verify_consistency(old_size, new_size, old_root,
                            _hex(header["log_root"], "header.log_root", 32), proof)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"bundle is malformed: {exc!r}") from exc


def _verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                        proof: list[bytes]) -> None:
    """RFC 9162 section 2.1.4.2, steps 1-6."""
    if not isinstance(first, int) or not isinstance(second, int) or not 0 < first <= second:
        raise BundleError("need 0 < old_size <= new_size")
    if first == second:
        if proof:
            raise BundleError("consistency proof for equal sizes must be empty")
        if first_hash != second_hash:
            raise BundleError("equal sizes with different roots")
        return
    if not proof:
        raise BundleError("consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # step 2: first is an exact power of two
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:  # step 6
        if sn == 0:
            raise BundleError("consistency proof has extra hashes")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise BundleError("consistency proof is too short")
    if fr != first_hash:
        raise BundleError("consistency proof does not lead to old_root")
    if sr != second_hash:
        raise BundleError("consistency proof does not lead to the certified log_root")


# -- rating attestations (specs/ratings.md#attestation) -------------------------------

ATTESTATION_DOMAIN = b"tradeledger/v1/attestation\x00"
ATTESTATION_VERSION = "tradeledger-rating-attestation/1"
_ATTESTATION_FIELDS = frozenset({"version", "statement", "signature", "header", "certificate"})
_STATEMENT_FIELDS = frozenset({
    "version", "chain_id", "genesis_hash", "buyer", "status", "score", "band", "invoices",
    "suppliers", "reason", "factors", "trend", "policy", "as_of", "height", "header_hash",
    "org", "key_id",
})
_HEADER_FIELDS = frozenset({"chain_id", "height", "prev_hash", "log_size", "log_root",
                            "state_root", "time", "proposer"})
_MAX_SAFE = 2**53 - 1


@dataclass(frozen=True)
class VerifiedRating:
    """What a verified rating attestation proves: this node key of ``org`` stated
    this rating of ``buyer`` over the state of the certified block ``height``."""

    buyer: str
    status: str  # "rated" or "insufficient"
    score: int | None
    band: str | None
    invoices: int
    suppliers: int
    reason: str
    factors: dict[str, Any] | None
    trend: list[dict[str, Any]]
    policy: dict[str, Any]
    as_of: str
    height: int
    header_hash: str
    org: str
    key_id: str
    certified_by: tuple[str, ...]


def _jcs(value: Any) -> str:
    """RFC 8785 for JSON of objects with ASCII member names, strings, safe integers,
    booleans and null (what an attestation holds); anything else is refused."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if not -_MAX_SAFE <= value <= _MAX_SAFE:
            raise BundleError(f"integer {value} is outside the I-JSON range")
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) and k.isascii() for k in value):
            raise BundleError("member names must be ASCII strings")
        return "{" + ",".join(json.dumps(k) + ":" + _jcs(value[k])
                              for k in sorted(value)) + "}"
    raise BundleError(f"{type(value).__name__} values are not allowed in an attestation")


def _refuse_constant(name: str) -> Any:
    raise BundleError(f"{name} is not JSON")


def _refuse_float(text: str) -> Any:
    raise BundleError(f"number {text} is not an integer")


def _exact(obj: Any, fields: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BundleError(f"{what} must be an object")
    if set(obj) != fields:
        extra, missing = sorted(set(obj) - fields), sorted(fields - set(obj))
        raise BundleError(f"{what} has unexpected members {extra} or lacks {missing}")
    return obj


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleError(f"{what} must be a non-negative integer")
    return value


def _strict_certificate(anchor: TrustAnchor, header_hash: bytes,
                        certificate: dict[str, Any]) -> None:
    """Every signature in an attestation's certificate must be a genesis validator's and
    verify: a falsified signature is refused even when the others make the quorum."""
    _exact(certificate, frozenset({"height", "block_hash", "signatures"}), "certificate")
    signatures = certificate["signatures"]
    if not isinstance(signatures, list):
        raise BundleError("certificate.signatures must be a list")
    seen: set[str] = set()
    for i, sig in enumerate(signatures):
        _exact(sig, frozenset({"org", "key_id", "signature"}), f"certificate.signatures[{i}]")
        org, kid = sig["org"], sig["key_id"]
        public = anchor.node_keys.get(org, {}).get(kid) if isinstance(org, str) else None
        if public is None:
            raise BundleError(f"certificate.signatures[{i}] is not by a validator node key "
                              "named in genesis")
        if org in seen:
            raise BundleError(f"certificate.signatures[{i}]: {org} signed twice")
        seen.add(org)
        raw = _hex(sig["signature"], f"certificate.signatures[{i}].signature", 64)
        try:
            nacl.bindings.crypto_sign_open(raw + CHECKPOINT_DOMAIN + header_hash, public)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise BundleError(f"certificate.signatures[{i}] does not verify") from exc


def verify_rating_attestation(genesis_bytes: bytes, attestation: bytes) -> VerifiedRating:
    """Verify a rating attestation file (its exact bytes) against a genesis file alone.

    Steps (specs/ratings.md#attestation-verification):

    1. The file is the RFC 8785 form of an object with exactly the attestation's
       members, ``version`` is ``tradeledger-rating-attestation/1``.
    2. The statement names this chain and genesis; its ``key_id`` is a node key
       of its ``org`` in the genesis file; the signature verifies over
       ``tradeledger/v1/attestation\\0 || canonical(statement)``.
    3. The header is for this chain, its hash is the statement's ``header_hash``,
       its height and date are the statement's ``height`` and ``as_of``.
    4. The certificate signs that hash with a quorum of genesis validators, and
       every signature in it verifies.
    5. The outcome is well-formed: a rated statement has a score 0..100 in its
       band, an insufficient one none.
    """
    anchor = load_anchor(genesis_bytes)
    try:
        text = attestation.decode("utf-8")
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_refuse_float)
        # Step 1.
        _exact(doc, _ATTESTATION_FIELDS, "attestation")
        if _jcs(doc) != text:
            raise BundleError("attestation file is not in its canonical (RFC 8785) form; "
                              "keep the file exactly as the node issued it")
        if doc["version"] != ATTESTATION_VERSION:
            raise BundleError(f"not a {ATTESTATION_VERSION} attestation")
        stmt = _exact(doc["statement"], _STATEMENT_FIELDS, "statement")
        # Step 2.
        if stmt["version"] != ATTESTATION_VERSION:
            raise BundleError("statement version is not the attestation's")
        if stmt["chain_id"] != anchor.chain_id:
            raise BundleError("statement is for another chain")
        if _hex(stmt["genesis_hash"], "statement.genesis_hash", 32) != anchor.genesis_hash:
            raise BundleError("statement names another genesis")
        org, kid = stmt["org"], stmt["key_id"]
        public = anchor.org_node_keys.get(org, {}).get(kid) if isinstance(org, str) else None
        if public is None:
            raise BundleError(f"key {kid!r} is not a node key of organisation {org!r} in the "
                              "genesis file")
        signature = _hex(doc["signature"], "signature", 64)
        try:
            nacl.bindings.crypto_sign_open(
                signature + ATTESTATION_DOMAIN + _jcs(stmt).encode("utf-8"), public)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise BundleError("the node's signature on the statement does not verify") from exc
        # Step 3.
        header = _exact(doc["header"], _HEADER_FIELDS, "header")
        header_hash = _sha256(_flat_canonical(header))
        if _hex(stmt["header_hash"], "statement.header_hash", 32) != header_hash:
            raise BundleError("the header is not the one the statement names")
        height = _int(stmt["height"], "statement.height")
        if header.get("height") != height:
            raise BundleError("the statement's height is not the header's")
        if not isinstance(header["time"], str) or stmt["as_of"] != header["time"][:10]:
            raise BundleError("the statement's as_of is not the header's date")
        # Step 4.
        certificate = doc["certificate"]
        _strict_certificate(anchor, header_hash, certificate)
        _, certified_by = verify_header(anchor, header, certificate)
        # Step 5.
        status, score, band = stmt["status"], stmt["score"], stmt["band"]
        if status == "rated":
            if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
                raise BundleError("a rated statement has a score from 0 to 100")
            if band != ("low" if score >= 80 else "medium" if score >= 50 else "high"):
                raise BundleError(f"band {band!r} is not the band of score {score}")
            if not isinstance(stmt["factors"], dict):
                raise BundleError("a rated statement has factors")
        elif status == "insufficient":
            if score is not None or band is not None or stmt["factors"] is not None:
                raise BundleError("an insufficient statement has no score, band or factors")
        else:
            raise BundleError(f"status {status!r} is neither rated nor insufficient")
        for name in ("buyer", "reason", "as_of"):
            if not isinstance(stmt[name], str):
                raise BundleError(f"statement.{name} must be a string")
        if not isinstance(stmt["trend"], list) or not isinstance(stmt["policy"], dict):
            raise BundleError("statement.trend must be a list and statement.policy an object")
        return VerifiedRating(
            buyer=stmt["buyer"], status=status, score=score, band=band,
            invoices=_int(stmt["invoices"], "statement.invoices"),
            suppliers=_int(stmt["suppliers"], "statement.suppliers"),
            reason=stmt["reason"], factors=stmt["factors"], trend=stmt["trend"],
            policy=stmt["policy"], as_of=stmt["as_of"], height=height,
            header_hash=header_hash.hex(), org=org, key_id=kid, certified_by=certified_by)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(f"attestation is malformed: {exc!r}") from exc
