"""Sealed details: a salted commitment plus one sealed box per receiving party.

specs/trade.md#confidential-details. The commercial details of a trade record
(line items, unit prices, quantities, bank terms) travel as

    {"commitment": hex, "sealed": {org: base64(crypto_box_seal(plaintext, pk_org))}}

where ``plaintext = canonical({"details": details, "salt": hex(32 random bytes)})``
and ``commitment = SHA-256("tradeledger/v1/confidential\\0" || plaintext)``.
Validators see only that shape; the contracts never open it. A party opens its
copy with its organisation's X25519 secret (:class:`ledger.keys.EncryptionKey`)
and checks the commitment, so every party that checks reads the same details.

:func:`seal` and :func:`open_sealed` raise; :func:`check_sealed_copy` is the
non-raising diagnostic a party's node records (STYLE habit 6).
"""

from __future__ import annotations

import binascii
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import nacl.exceptions
import nacl.public
import nacl.utils

from ledger.contracts.base import parse_payload
from ledger.contracts.membership import ORG_ID
from ledger.contracts.trade import (
    CONFIDENTIAL_TYPES,
    MAX_SEALED,
    MAX_SEALED_CHARS,
    Confidential,
)
from ledger.encoding import canonical, loads
from ledger.errors import MalformedRecord, VerificationError
from ledger.hashing import sha256
from ledger.keys import EncryptionKey

COMMITMENT_DOMAIN: Final = b"tradeledger/v1/confidential\x00"
SALT_SIZE: Final = 32
_SALT_HEX = re.compile(r"[0-9a-f]{64}")
_ORG = re.compile(ORG_ID)

Outcome = Literal["verified", "mismatch", "unreadable", "not_addressed"]


class ConfidentialError(VerificationError):
    """A sealed copy cannot be opened, or what it holds is not what was committed.

    Codes: ``not_addressed`` (no copy for the organisation), ``unreadable``
    (the box does not open with the organisation's key: tampered, or sealed to
    another key), ``commitment_mismatch`` (the plaintext is not the one the
    commitment names), ``bad_plaintext`` (committed, but not a canonical
    ``{"details", "salt"}`` object).
    """

    default_code = "confidential"


def committed_plaintext(details: Mapping[str, Any], salt: bytes) -> bytes:
    """Step 2 of sealing: ``canonical({"details": details, "salt": hex(salt)})``."""
    if not isinstance(details, Mapping):
        raise MalformedRecord("must be a JSON object", field="details", rule="object")
    if len(salt) != SALT_SIZE:
        raise MalformedRecord(f"must be {SALT_SIZE} bytes, got {len(salt)}", field="salt",
                              rule="length")
    try:
        return canonical({"details": dict(details), "salt": salt.hex()})
    except MalformedRecord as exc:
        raise MalformedRecord(exc.message, field="details", rule=exc.rule) from exc


def commitment_of(plaintext: bytes) -> str:
    """Step 3 of sealing: hex SHA-256 of the domain prefix and the plaintext."""
    return sha256(COMMITMENT_DOMAIN + plaintext).hex()


def _recipient(org: str, public_key: bytes) -> nacl.public.SealedBox[nacl.public.PublicKey]:
    if not isinstance(org, str) or not _ORG.fullmatch(org):
        raise MalformedRecord("is not an org id", field=f"recipients[{org!r}]", rule="org_id")
    if not isinstance(public_key, bytes) or len(public_key) != nacl.public.PublicKey.SIZE:
        raise MalformedRecord("must be a 32-byte X25519 public key", field=f"recipients[{org}]",
                              rule="length")
    return nacl.public.SealedBox(nacl.public.PublicKey(public_key))


def seal(details: Mapping[str, Any], recipients: Mapping[str, bytes], *,
         salt: bytes | None = None) -> dict[str, Any]:
    """The ``confidential`` wire object for ``details``, sealed to every recipient.

    ``recipients`` maps org ids to their X25519 public keys (``encryption_key``
    in genesis). ``salt`` defaults to 32 fresh random bytes; pass one only to
    reproduce a test vector. Steps: specs/trade.md#sealing.
    """
    # 1. One to MAX_SEALED recipients.
    if not 1 <= len(recipients) <= MAX_SEALED:
        raise MalformedRecord(f"must name 1 to {MAX_SEALED} organisations",
                              field="recipients", rule="count")
    # 2. The plaintext, salted.
    plaintext = committed_plaintext(details, nacl.utils.random(SALT_SIZE) if salt is None
                                    else salt)
    # 3. The commitment.
    commitment = commitment_of(plaintext)
    # 4. One sealed box per recipient, each with its own ephemeral key.
    sealed: dict[str, str] = {}
    for org in sorted(recipients):
        box = _recipient(org, recipients[org])
        try:
            ciphertext = box.encrypt(plaintext)
        except nacl.exceptions.CryptoError as exc:
            raise MalformedRecord("is not a usable X25519 public key",
                                  field=f"recipients[{org}]", rule="x25519") from exc
        text = binascii.b2a_base64(bytes(ciphertext), newline=False).decode("ascii")
        if len(text) > MAX_SEALED_CHARS:
            raise MalformedRecord(
                f"sealed details take {len(text)} base64 characters, over the "
                f"{MAX_SEALED_CHARS} a record allows", field="details", rule="max_size")
        sealed[org] = text
    return {"commitment": commitment, "sealed": sealed}


def open_sealed(confidential: Mapping[str, Any], org: str, key: EncryptionKey
                ) -> dict[str, Any]:
    """The details in ``org``'s sealed copy, after checking them against the commitment.

    Raises :class:`MalformedRecord` for a wire object of the wrong shape and
    :class:`ConfidentialError` otherwise. Steps: specs/trade.md#opening.
    """
    # 1. The wire object has the shape validators check.
    wire = parse_payload(Confidential, confidential, path="confidential")
    # 2. There is a copy for the organisation.
    text = wire.sealed.get(org)
    if text is None:
        raise ConfidentialError(
            f"confidential.sealed: no copy is sealed to {org}; copies exist for "
            f"{', '.join(sorted(wire.sealed))}", code="not_addressed")
    # 3. The box opens with the organisation's secret.
    try:
        plaintext = bytes(nacl.public.SealedBox(key.private_key).decrypt(
            binascii.a2b_base64(text, strict_mode=True)))
    except (nacl.exceptions.CryptoError, binascii.Error) as exc:
        raise ConfidentialError(
            f"confidential.sealed[{org}]: the sealed box does not open with {org}'s "
            "encryption key (altered ciphertext, or sealed to another key)",
            code="unreadable") from exc
    # 4. The plaintext is the committed one (compared in constant time).
    found = commitment_of(plaintext)
    if not hmac.compare_digest(found, wire.commitment):
        raise ConfidentialError(
            f"confidential.commitment: the details sealed to {org} hash to {found}, "
            f"not to the committed {wire.commitment}", code="commitment_mismatch")
    # 5. It is the canonical {"details": object, "salt": 64 hex} object.
    return _details(plaintext, org)


def _details(plaintext: bytes, org: str) -> dict[str, Any]:
    where = f"confidential.sealed[{org}]"
    try:
        value = loads(plaintext)
    except MalformedRecord as exc:
        raise ConfidentialError(f"{where}: the plaintext is not JSON ({exc.message})",
                                code="bad_plaintext") from exc
    if not isinstance(value, dict) or set(value) != {"details", "salt"}:
        raise ConfidentialError(f'{where}: the plaintext must be {{"details", "salt"}}',
                                code="bad_plaintext")
    if not isinstance(value["details"], dict):
        raise ConfidentialError(f"{where}: details must be a JSON object",
                                code="bad_plaintext")
    if not isinstance(value["salt"], str) or not _SALT_HEX.fullmatch(value["salt"]):
        raise ConfidentialError(f"{where}: salt must be 32 bytes in lower-case hex",
                                code="bad_plaintext")
    if canonical(value) != plaintext:
        raise ConfidentialError(f"{where}: the plaintext is not in RFC 8785 canonical form",
                                code="bad_plaintext")
    details: dict[str, Any] = value["details"]
    return details


def check_opening(commitment: str, details: Mapping[str, Any], salt: bytes) -> None:
    """A third party's check of disclosed details: ``details`` and ``salt`` as a party
    handed them over must give ``commitment`` (specs/trade.md, section 5)."""
    found = commitment_of(committed_plaintext(details, salt))
    if not hmac.compare_digest(found, commitment):
        raise ConfidentialError(
            f"the disclosed details and salt commit to {found}, not to {commitment}",
            code="commitment_mismatch")


@dataclass(frozen=True)
class CheckResult:
    """What a party's node found when it opened its copy (never the details)."""

    outcome: Outcome
    detail: str = ""


def check_sealed_copy(confidential: Mapping[str, Any], org: str, key: EncryptionKey
                      ) -> CheckResult:
    """Non-raising form of :func:`open_sealed`: the outcome and why, details dropped."""
    try:
        open_sealed(confidential, org, key)
    except ConfidentialError as exc:
        if exc.code == "not_addressed":
            return CheckResult("not_addressed", exc.message)
        if exc.code == "unreadable":
            return CheckResult("unreadable", exc.message)
        return CheckResult("mismatch", exc.message)
    except MalformedRecord as exc:
        return CheckResult("mismatch", exc.message)
    return CheckResult("verified")


def confidential_of(tx_type: str, payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``confidential`` member of a committed payload of a type that may carry one."""
    if tx_type not in CONFIDENTIAL_TYPES:
        return None
    value = payload.get("confidential")
    return value if isinstance(value, Mapping) else None
