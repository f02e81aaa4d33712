"""Signed member requests and explorer sessions (specs/api.md#signed-requests).

Every API request of a member carries four headers: ``TL-Key`` (the key id),
``TL-Time`` (RFC 3339 UTC), ``TL-Nonce`` and ``TL-Signature``. The signature
covers ``"tradeledger/v1/request\\x00" || canonical(claims)`` where ``claims``
binds the chain, the key, the method, the exact request target (path and
query as sent), the SHA-256 of the body, the time and the nonce. A signature
on a request can therefore never be replayed on another chain, path, method or
body, and never verifies as a transaction or checkpoint signature.

A session token lets a person open the node's explorer in a browser: the same
claims idea under its own domain (``tradeledger/v1/session``), short-lived and
used once.

Pure functions: the clock and the key directory are passed in.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.encoding import canonical, loads
from ledger.errors import MalformedRecord, PermissionDenied, VerificationError
from ledger.hashing import sha256
from ledger.keys import SIGNATURE_SIZE, Domain, SigningKey, verify
from ledger.timefmt import format_time, parse_time

HEADER_KEY = "tl-key"
HEADER_TIME = "tl-time"
HEADER_NONCE = "tl-nonce"
HEADER_SIGNATURE = "tl-signature"
HEADERS = (HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)

# A request's time may differ from the node's clock by this much either way;
# nonces are remembered for twice as long, so a replay inside the window is
# always caught.
REQUEST_SKEW = timedelta(minutes=5)
SESSION_TOKEN_MAX_LIFETIME = timedelta(minutes=10)

KEY_ID_RE = re.compile(r"[0-9a-f]{32}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
METHOD_RE = re.compile(r"[A-Z]{3,7}")


class Unauthenticated(PermissionDenied):
    """The request carries no valid member signature (HTTP 401)."""

    default_code = "unauthenticated"


@dataclass(frozen=True)
class SignedRequest:
    """The parsed authentication headers of one request."""

    key_id: str
    time: datetime
    nonce: str
    signature: bytes


def request_claims(*, chain_id: str, key_id: str, method: str, target: str, body: bytes,
                   time: datetime, nonce: str) -> bytes:
    """The canonical bytes a request signature covers (after the domain prefix)."""
    return canonical({
        "chain_id": chain_id,
        "key_id": key_id,
        "method": method.upper(),
        "target": target,
        "body_sha256": sha256(body).hex(),
        "time": format_time(time),
        "nonce": nonce,
    })


def sign_request(key: SigningKey, *, chain_id: str, method: str, target: str, body: bytes,
                 time: datetime, nonce: str) -> dict[str, str]:
    """The four headers that authenticate one request."""
    claims = request_claims(chain_id=chain_id, key_id=key.key_id, method=method,
                            target=target, body=body, time=time, nonce=nonce)
    return {
        "TL-Key": key.key_id,
        "TL-Time": format_time(time),
        "TL-Nonce": nonce,
        "TL-Signature": key.sign(Domain.REQUEST, claims).hex(),
    }


def parse_headers(headers: dict[str, str]) -> SignedRequest | None:
    """Read the authentication headers (lower-case names); ``None`` when there are none.

    Some but not all of them present is an error naming the first one missing.
    """
    present = [h for h in HEADERS if h in headers]
    if not present:
        return None
    for name in HEADERS:
        if name not in headers:
            raise Unauthenticated(f"header {_title(name)} is missing; a signed request "
                                  f"carries {', '.join(_title(h) for h in HEADERS)}")
    key_id = headers[HEADER_KEY]
    if not KEY_ID_RE.fullmatch(key_id):
        raise MalformedRecord("must be a 32-hex-digit key id", field="TL-Key", rule="key_id")
    nonce = headers[HEADER_NONCE]
    if not NONCE_RE.fullmatch(nonce):
        raise MalformedRecord("must be 16-64 characters [A-Za-z0-9_-]", field="TL-Nonce",
                              rule="nonce")
    time = parse_time(headers[HEADER_TIME], field="TL-Time")
    if format_time(time) != headers[HEADER_TIME]:
        raise MalformedRecord(f"must be spelt {format_time(time)} (no trailing zeros in the "
                              "fraction)", field="TL-Time", rule="canonical_time")
    text = headers[HEADER_SIGNATURE]
    if len(text) != 2 * SIGNATURE_SIZE or not re.fullmatch(r"[0-9a-f]+", text):
        raise MalformedRecord("must be 128 lower-case hex digits", field="TL-Signature",
                              rule="hex")
    return SignedRequest(key_id, time, nonce, bytes.fromhex(text))


def check_request(signed: SignedRequest, public_key: bytes, *, chain_id: str, method: str,
                  target: str, body: bytes, now: datetime) -> None:
    """Verify one request's signature and freshness; raise :class:`Unauthenticated`.

    The nonce's single use is the caller's to enforce (it needs memory).
    """
    if abs(now - signed.time) > REQUEST_SKEW:
        raise Unauthenticated(
            f"TL-Time {format_time(signed.time)} is more than "
            f"{int(REQUEST_SKEW.total_seconds() // 60)} minutes from the node's clock "
            f"({format_time(now)}); check the client's clock", code="stale_request")
    claims = request_claims(chain_id=chain_id, key_id=signed.key_id, method=method,
                            target=target, body=body, time=signed.time, nonce=signed.nonce)
    try:
        verify(public_key, Domain.REQUEST, claims, signed.signature)
    except VerificationError as exc:
        raise Unauthenticated(
            "TL-Signature does not verify for this method, target, body and time "
            f"(key {signed.key_id})", code="bad_request_signature") from exc


# -- explorer sessions ---------------------------------------------------------------


@dataclass(frozen=True)
class SessionToken:
    key_id: str
    chain_id: str
    expires_at: datetime
    nonce: str
    signature: bytes
    claims: bytes


def session_token(key: SigningKey, *, chain_id: str, now: datetime, nonce: str,
                  lifetime: timedelta = timedelta(minutes=2)) -> str:
    """A one-time token that opens an explorer session for ``key``'s organisation."""
    if not timedelta(0) < lifetime <= SESSION_TOKEN_MAX_LIFETIME:
        raise MalformedRecord(f"must be at most {SESSION_TOKEN_MAX_LIFETIME}",
                              field="lifetime", rule="max")
    claims = canonical({"purpose": "explorer-session", "chain_id": chain_id,
                        "key_id": key.key_id, "expires_at": format_time(now + lifetime),
                        "nonce": nonce})
    signature = key.sign(Domain.SESSION, claims)
    return _b64(claims) + "." + _b64(signature)


def parse_session_token(token: str) -> SessionToken:
    parts = token.split(".")
    if len(parts) != 2:
        raise MalformedRecord("must be <claims>.<signature> in base64url", field="token",
                              rule="format")
    try:
        claims = _unb64(parts[0])
        signature = _unb64(parts[1])
        data = loads(claims)
    except (binascii.Error, ValueError, MalformedRecord) as exc:
        raise MalformedRecord("is not a session token", field="token", rule="format") from exc
    expected = {"purpose", "chain_id", "key_id", "expires_at", "nonce"}
    if (not isinstance(data, dict) or set(data) != expected
            or data["purpose"] != "explorer-session" or len(signature) != SIGNATURE_SIZE
            or not isinstance(data["key_id"], str) or not KEY_ID_RE.fullmatch(data["key_id"])
            or not isinstance(data["nonce"], str) or not isinstance(data["chain_id"], str)):
        raise MalformedRecord("is not a session token", field="token", rule="format")
    expires = parse_time(data["expires_at"], field="token.expires_at")
    return SessionToken(data["key_id"], data["chain_id"], expires, data["nonce"], signature,
                        claims)


def check_session_token(token: SessionToken, public_key: bytes, *, chain_id: str,
                        now: datetime) -> None:
    if token.chain_id != chain_id:
        raise Unauthenticated(f"the token is for chain {token.chain_id!r}",
                              code="wrong_chain")
    if now > token.expires_at:
        raise Unauthenticated("the sign-in link has expired; make a new one",
                              code="expired_token")
    if token.expires_at - now > SESSION_TOKEN_MAX_LIFETIME:
        raise Unauthenticated("the token's lifetime is longer than allowed",
                              code="bad_token")
    try:
        verify(public_key, Domain.SESSION, token.claims, token.signature)
    except VerificationError as exc:
        raise Unauthenticated("the sign-in link's signature does not verify",
                              code="bad_token") from exc


def _title(header: str) -> str:
    return "-".join(part.upper() if part == "tl" else part.title() for part in header.split("-"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
