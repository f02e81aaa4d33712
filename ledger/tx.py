"""Signed transactions: ``{body, signatures}`` (specs/protocol.md#transactions).

``tx_id = SHA-256(canonical(body))``. Each signature covers
``"tradeledger/v1/tx\\x00" || tx_id``; the author signs first, and records that
bind two parties carry the counterparty's signature as well.

The wire form is validated strictly: unknown members are refused, every error
names the field and the rule. The payload is checked here only for being a JSON
object; its typed model belongs to the contract of its record family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from ledger import merkle
from ledger.encoding import canonical, loads, loads_trusted
from ledger.errors import MalformedRecord, VerificationError
from ledger.hashing import parse_hex, sha256
from ledger.keys import SIGNATURE_SIZE, Domain, SigningKey, verify
from ledger.timefmt import format_time, parse_time, time_or_none

TX_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
CHAIN_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KEY_ID_RE = re.compile(r"[0-9a-f]{32}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_SIGNATURES = 8
MAX_TTL = timedelta(days=1)

_BODY_FIELDS = ("type", "chain_id", "author", "nonce", "created_at", "expires_at", "payload")


@dataclass(frozen=True)
class TxSignature:
    key_id: str
    signature: bytes

    def to_wire(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self.signature.hex()}


@dataclass(frozen=True)
class TxBody:
    """The signed content of a transaction."""

    type: str
    chain_id: str
    author: str
    nonce: str
    created_at: datetime
    expires_at: datetime
    payload: Mapping[str, Any] = field(hash=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "chain_id": self.chain_id,
            "author": self.author,
            "nonce": self.nonce,
            "created_at": format_time(self.created_at),
            "expires_at": format_time(self.expires_at),
            # A deep copy: editing the returned dict must not edit this body.
            "payload": loads_trusted(canonical(dict(self.payload))),
        }

    @classmethod
    def from_wire(cls, wire: object, *, path: str = "body") -> TxBody:
        fast = _body_fast(wire)
        return cls(*fast) if fast is not None else cls.exact_from_wire(wire, path=path)

    @classmethod
    def exact_from_wire(cls, wire: object, *, path: str = "body") -> TxBody:
        """:meth:`from_wire` without its fast path: the checks one by one, each
        naming its field; tests hold the fast path to it."""
        obj = _object(wire, path)
        _exact_members(obj, _BODY_FIELDS, path)
        tx_type = _string(obj["type"], f"{path}.type", TX_TYPE_RE, "a dotted name like trade.invoice")
        chain_id = _string(obj["chain_id"], f"{path}.chain_id", CHAIN_ID_RE, "a chain id")
        author = _string(obj["author"], f"{path}.author", KEY_ID_RE, "a 32-hex-digit key id")
        nonce = _string(obj["nonce"], f"{path}.nonce", NONCE_RE, "8-64 characters [A-Za-z0-9_-]")
        created = parse_time(obj["created_at"], field=f"{path}.created_at")
        expires = parse_time(obj["expires_at"], field=f"{path}.expires_at")
        if expires <= created:
            raise MalformedRecord("must be later than created_at", field=f"{path}.expires_at",
                                  rule="after_created")
        if expires - created > MAX_TTL:
            raise MalformedRecord("may be at most 24 hours after created_at",
                                  field=f"{path}.expires_at", rule="max_ttl")
        payload = _object(obj["payload"], f"{path}.payload")
        return cls(tx_type, chain_id, author, nonce, created, expires, payload)


@dataclass(frozen=True)
class SignedTx:
    """A transaction with its signatures. ``body_bytes`` are the signed bytes.

    Construct with :meth:`from_wire` (untrusted input) or :func:`sign_tx`.
    """

    body: TxBody
    signatures: tuple[TxSignature, ...]
    body_bytes: bytes = field(repr=False)
    tx_id: bytes = field(repr=False)

    @cached_property
    def tx_id_hex(self) -> str:
        return self.tx_id.hex()

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(s.key_id for s in self.signatures)

    def to_wire(self) -> dict[str, Any]:
        """The wire form, its body parsed afresh from the signed bytes.

        Never re-serialised from fields: a body that spelled a time as
        ``...:30.000Z`` must travel as it was signed.
        """
        return {"body": loads_trusted(self.body_bytes),
                "signatures": [s.to_wire() for s in self.signatures]}

    @cached_property
    def signatures_bytes(self) -> bytes:
        """``canonical(signatures)``: the stored form and the leaf's second member."""
        return _signatures_bytes(self.signatures)

    def leaf_bytes(self) -> bytes:
        """The Merkle leaf data: canonical ``{body, signatures}``.

        Built from the stored signed bytes, never from a re-serialised body.
        """
        return _leaf(self.body_bytes, self.signatures_bytes)

    @cached_property
    def leaf_hash(self) -> bytes:
        """The Merkle leaf hash of :meth:`leaf_bytes` (RFC 9162 2.1.1).

        Cached, like ``signatures_bytes`` and ``tx_id_hex``: intake computes them
        (in the worker process for a large batch, whence they travel with the
        parsed transaction) so that the orderer finds them ready."""
        return merkle.leaf_hash(self.leaf_bytes())

    def precompute(self) -> SignedTx:
        """Fill the cached forms the orderer and the commit need; returns self.

        Set here directly, as the cached properties would set them: a first read
        through ``cached_property`` takes a lock (Python 3.11), which cost more
        than the hashing."""
        cached = self.__dict__
        if "leaf_hash" not in cached:
            if "signatures_bytes" not in cached:
                cached["signatures_bytes"] = _SIGNATURES_BYTES(self)
            cached["leaf_hash"] = _LEAF_HASH(self)
        if "tx_id_hex" not in cached:
            cached["tx_id_hex"] = _TX_ID_HEX(self)
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as one flat tuple of plain values (the worker process hands
        parsed batches to the node this way): about half the work of pickling
        the three dataclasses field by field. The cached forms travel along."""
        b = self.body
        cached = self.__dict__
        return _restore, (b.type, b.chain_id, b.author, b.nonce, b.created_at, b.expires_at,
                          b.payload, tuple((s.key_id, s.signature) for s in self.signatures),
                          self.body_bytes, self.tx_id, cached.get("tx_id_hex"),
                          cached.get("signatures_bytes"), cached.get("leaf_hash"))

    @classmethod
    def from_wire(cls, wire: object) -> SignedTx:
        if type(wire) is dict and wire.keys() == _TX_MEMBERS:
            fast = _body_fast(wire["body"])
            signatures = None if fast is None else _signatures_fast(wire["signatures"], fast[2])
            if fast is not None and signatures is not None:
                body_bytes = canonical(wire["body"])
                return _checked_tx(_checked_body(*fast), signatures, body_bytes,
                                   sha256(body_bytes))
        return cls.exact_from_wire(wire)

    @classmethod
    def exact_from_wire(cls, wire: object) -> SignedTx:
        """:meth:`from_wire` without its fast path (see TxBody.exact_from_wire)."""
        obj = _object(wire, "$")
        _exact_members(obj, ("body", "signatures"), "$")
        body = TxBody.exact_from_wire(obj["body"])
        sigs = obj["signatures"]
        if not isinstance(sigs, list) or not sigs:
            raise MalformedRecord("must be a non-empty list", field="signatures", rule="required")
        if len(sigs) > MAX_SIGNATURES:
            raise MalformedRecord(f"at most {MAX_SIGNATURES} signatures", field="signatures",
                                  rule="max_items")
        parsed: list[TxSignature] = []
        for i, item in enumerate(sigs):
            path = f"signatures[{i}]"
            entry = _object(item, path)
            _exact_members(entry, ("key_id", "signature"), path)
            kid = _string(entry["key_id"], f"{path}.key_id", KEY_ID_RE, "a 32-hex-digit key id")
            raw = parse_hex(entry["signature"], field=f"{path}.signature", size=SIGNATURE_SIZE)
            parsed.append(TxSignature(kid, raw))
        if len({s.key_id for s in parsed}) != len(parsed):
            raise MalformedRecord("a key signs at most once", field="signatures",
                                  rule="duplicate_signer")
        if parsed[0].key_id != body.author:
            raise MalformedRecord("the first signature must be the author's",
                                  field="signatures[0].key_id", rule="author_first")
        body_bytes = canonical(obj["body"])
        return cls(body, tuple(parsed), body_bytes, sha256(body_bytes))

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedTx:
        return cls.from_wire(loads(data))


# What the cached properties of SignedTx compute, for precompute() to call directly.
_SIGNATURES_BYTES: Callable[[SignedTx], bytes] = vars(SignedTx)["signatures_bytes"].func
_LEAF_HASH: Callable[[SignedTx], bytes] = vars(SignedTx)["leaf_hash"].func
_TX_ID_HEX: Callable[[SignedTx], str] = vars(SignedTx)["tx_id_hex"].func


def leaf_bytes(body_bytes: bytes, signatures: Iterable[TxSignature]) -> bytes:
    return _leaf(body_bytes, _signatures_bytes(tuple(signatures)))


def _signatures_bytes(signatures: Sequence[TxSignature]) -> bytes:
    """``canonical([s.to_wire() for s in signatures])``, written directly when every
    key id is ASCII letters and digits (as key ids are): such strings and hex
    signatures need no escaping, and ``key_id`` sorts before ``signature``."""
    if all(s.key_id.isascii() and s.key_id.isalnum() for s in signatures):
        return ("[" + ",".join(f'{{"key_id":"{s.key_id}","signature":"{s.signature.hex()}"}}'
                               for s in signatures) + "]").encode()
    return canonical([s.to_wire() for s in signatures])


def _leaf(body_bytes: bytes, signatures_bytes: bytes) -> bytes:
    return b'{"body":' + body_bytes + b',"signatures":' + signatures_bytes + b"}"


def signing_message(tx_id: bytes) -> bytes:
    """What a transaction signature covers, after the domain prefix."""
    return tx_id


def make_body(
    *,
    tx_type: str,
    chain_id: str,
    author: SigningKey | str,
    payload: Mapping[str, Any],
    nonce: str,
    created_at: datetime,
    ttl: timedelta = timedelta(hours=1),
) -> TxBody:
    """Build a body (validated through the wire form, so it is always legal)."""
    kid = author if isinstance(author, str) else author.key_id
    wire = {
        "type": tx_type,
        "chain_id": chain_id,
        "author": kid,
        "nonce": nonce,
        "created_at": format_time(created_at),
        "expires_at": format_time(created_at + ttl),
        "payload": dict(payload),
    }
    return TxBody.from_wire(wire)


def sign_tx(body: TxBody, keys: Sequence[SigningKey]) -> SignedTx:
    """Sign ``body`` with ``keys``; the first key must be the author's."""
    body_bytes = canonical(body.to_wire())
    tx_id = sha256(body_bytes)
    sigs = tuple(TxSignature(k.key_id, k.sign(Domain.TX, tx_id)) for k in keys)
    return SignedTx.from_wire({"body": body.to_wire(), "signatures": [s.to_wire() for s in sigs]})


def add_signature(tx: SignedTx, key: SigningKey) -> SignedTx:
    """A counterparty adds its signature to a transaction someone else wrote."""
    sig = TxSignature(key.key_id, key.sign(Domain.TX, tx.tx_id))
    wire = tx.to_wire()
    wire["signatures"].append(sig.to_wire())
    return SignedTx.from_wire(wire)


def verify_tx_signatures(tx: SignedTx, public_keys: Mapping[str, bytes]) -> None:
    """Verify every signature of ``tx`` against the given key-id -> key map."""
    for i, sig in enumerate(tx.signatures):
        key = public_keys.get(sig.key_id)
        if key is None:
            raise VerificationError(f"signatures[{i}]: unknown key {sig.key_id}",
                                    code="unknown_key")
        verify(key, Domain.TX, tx.tx_id, sig.signature)


# Strict wire helpers -----------------------------------------------------
#
# Each parser has a fast path for well-formed input that builds no error paths
# (the f-strings naming fields cost more than the checks); on any doubt it
# returns None and the exact path runs, which raises the precise error or, for
# input the fast path merely did not take, returns the same value.

_TX_MEMBERS = frozenset(("body", "signatures"))
_BODY_MEMBERS = frozenset(_BODY_FIELDS)
_SIG_MEMBERS = frozenset(("key_id", "signature"))


def _body_fast(wire: object) -> tuple[Any, ...] | None:
    if type(wire) is not dict or wire.keys() != _BODY_MEMBERS:
        return None
    tx_type, chain_id, author, nonce = (wire["type"], wire["chain_id"], wire["author"],
                                        wire["nonce"])
    created, expires = time_or_none(wire["created_at"]), time_or_none(wire["expires_at"])
    payload = wire["payload"]
    if (type(tx_type) is str and type(chain_id) is str and type(author) is str
            and type(nonce) is str and created is not None and expires is not None
            and isinstance(payload, dict) and TX_TYPE_RE.fullmatch(tx_type)
            and CHAIN_ID_RE.fullmatch(chain_id) and KEY_ID_RE.fullmatch(author)
            and NONCE_RE.fullmatch(nonce) and created < expires <= created + MAX_TTL):
        return tx_type, chain_id, author, nonce, created, expires, payload
    return None


def _signatures_fast(sigs: object, author: str) -> tuple[TxSignature, ...] | None:
    if type(sigs) is not list or not 0 < len(sigs) <= MAX_SIGNATURES:
        return None
    parsed: list[TxSignature] = []
    for entry in sigs:
        if type(entry) is not dict or entry.keys() != _SIG_MEMBERS:
            return None
        kid = entry["key_id"]
        if type(kid) is not str or not KEY_ID_RE.fullmatch(kid):
            return None
        try:
            raw = parse_hex(entry["signature"], field="signature", size=SIGNATURE_SIZE)
        except MalformedRecord:
            return None
        parsed.append(_checked_signature(kid, raw))
    if parsed[0].key_id != author or len({s.key_id for s in parsed}) != len(parsed):
        return None
    return tuple(parsed)


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedRecord("must be a JSON object", field=path, rule="object")
    return value


_MEMBER_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _member_set(names: Sequence[str]) -> frozenset[str]:
    key = tuple(names)
    found = _MEMBER_SETS.get(key)
    if found is None:
        found = _MEMBER_SETS[key] = frozenset(key)
    return found


def _exact_members(obj: Mapping[str, Any], names: Sequence[str], path: str) -> None:
    if obj.keys() == _member_set(names):
        return
    prefix = "" if path == "$" else f"{path}."
    for name in names:
        if name not in obj:
            raise MalformedRecord("is required", field=f"{prefix}{name}", rule="required")
    for name in obj:
        if name not in names:
            raise MalformedRecord("is not a known member", field=f"{prefix}{name}",
                                  rule="unknown_field")


def _string(value: object, path: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedRecord(f"must be {what}", field=path, rule="format")
    return value


_new = object.__new__


# Checked values set as a frozen dataclass's __init__ would set them, without
# its object.__setattr__ call per field: for the fast parse and for unpickling.
def _checked_body(tx_type: str, chain_id: str, author: str, nonce: str,
                  created_at: datetime, expires_at: datetime,
                  payload: Mapping[str, Any]) -> TxBody:
    body = _new(TxBody)
    body.__dict__.update(type=tx_type, chain_id=chain_id, author=author, nonce=nonce,
                         created_at=created_at, expires_at=expires_at, payload=payload)
    return body


def _checked_signature(key_id: str, signature: bytes) -> TxSignature:
    sig = _new(TxSignature)
    sig.__dict__.update(key_id=key_id, signature=signature)
    return sig


def _checked_tx(body: TxBody, signatures: tuple[TxSignature, ...], body_bytes: bytes,
                tx_id: bytes) -> SignedTx:
    tx = _new(SignedTx)
    tx.__dict__.update(body=body, signatures=signatures, body_bytes=body_bytes, tx_id=tx_id)
    return tx


def _restore(tx_type: str, chain_id: str, author: str, nonce: str, created_at: datetime,
             expires_at: datetime, payload: Mapping[str, Any],
             signatures: tuple[tuple[str, bytes], ...], body_bytes: bytes, tx_id: bytes,
             tx_id_hex: str | None, signatures_bytes: bytes | None, leaf_hash: bytes | None
             ) -> SignedTx:
    """A :class:`SignedTx` from :meth:`SignedTx.__reduce__`'s tuple. The values were
    checked when the transaction was parsed; like unpickling, this sets them
    without running the checks again."""
    body = _checked_body(tx_type, chain_id, author, nonce, created_at, expires_at, payload)
    sigs = tuple([_checked_signature(key_id, signature) for key_id, signature in signatures])
    tx = _checked_tx(body, sigs, body_bytes, tx_id)
    state = tx.__dict__
    if tx_id_hex is not None:
        state["tx_id_hex"] = tx_id_hex
    if signatures_bytes is not None:
        state["signatures_bytes"] = signatures_bytes
    if leaf_hash is not None:
        state["leaf_hash"] = leaf_hash
    return tx
