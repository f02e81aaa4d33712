"""Who is asking: signed member requests and explorer sessions (specs/api.md#signed-requests).

Routes take a :class:`Caller` through the ``member`` dependency (or
``optional_member`` where anonymous callers get the public view). The rules
about what a caller may read live in :mod:`node.reads`; this module only
establishes identity:

1. the four ``TL-*`` headers parse (ledger.access);
2. the key is enrolled, active, a member or admin key (never a node key) of an
   active organisation, as the node's committed state says now;
3. the time is within five minutes of the node's clock and the signature
   covers this chain, method, target and body;
4. the nonce was not used by this key in the last ten minutes.

The node remembers nonces in memory: a restart forgets them, which is safe
because a request older than five minutes is refused on its time alone, and
a restart takes longer than that to matter only if the clock moves back.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from ledger.access import (
    REQUEST_SKEW,
    SignedRequest,
    Unauthenticated,
    check_request,
    check_session_token,
    parse_headers,
    parse_session_token,
)
from ledger.contracts import Keys
from ledger.contracts.membership import key_usable
from ledger.encoding import loads_trusted
from ledger.errors import MalformedRecord
from node.service import LedgerNode

SESSION_COOKIE = "tl_session"
SESSION_LIFETIME = timedelta(hours=8)
MAX_NONCES = 200_000
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Caller:
    """An authenticated member: its organisation, the key it signed with, its roles."""

    org: str
    key_id: str
    roles: frozenset[str]


class NonceCache:
    """Request nonces seen in the last ``2 x REQUEST_SKEW``, per key."""

    def __init__(self, *, ttl: float = 2 * REQUEST_SKEW.total_seconds(),
                 max_entries: int = MAX_NONCES) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()

    def use(self, key_id: str, nonce: str) -> None:
        """Record a nonce; raise if it was used before inside the window."""
        now = time.monotonic()
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at <= self._ttl and len(self._seen) < self._max:
                    break
                del self._seen[oldest]
            if (key_id, nonce) in self._seen:
                raise Unauthenticated("TL-Nonce was used before by this key: a replayed "
                                      "request is refused", code="replayed_request")
            self._seen[(key_id, nonce)] = now


@dataclass
class Session:
    caller_key: str
    expires: float


class Authenticator:
    """Establishes the caller of each request against one node's state."""

    def __init__(self, node: LedgerNode) -> None:
        self.node = node
        self.nonces = NonceCache()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # -- keys ---------------------------------------------------------------------

    def caller_for_key(self, key_id: str) -> tuple[Caller, bytes]:
        """The member behind ``key_id`` and its public key, if it may sign now
        (a rotated key only inside its overlap window, as for transactions)."""
        raw = self.node.state_raw(Keys.key(key_id))
        record: Any = None if raw is None else loads_trusted(raw)
        if record is None:
            raise Unauthenticated(f"TL-Key {key_id} is not an enrolled key",
                                  code="unknown_key")
        if record["status"] != "active":
            raise Unauthenticated(f"TL-Key {key_id} is {record['status']}",
                                  code="key_revoked")
        if not key_usable(record, self.node.clock.now()):
            raise Unauthenticated(f"TL-Key {key_id} was rotated to {record.get('rotated_to')}; "
                                  f"it signed until {record.get('valid_until')}",
                                  code="key_rotated")
        if record["kind"] == "node":
            raise Unauthenticated(f"TL-Key {key_id} is a node key; node keys sign "
                                  "checkpoints only", code="node_key")
        org_raw = self.node.state_raw(Keys.org(record["org"]))
        org: Any = None if org_raw is None else loads_trusted(org_raw)
        if org is None or org["status"] != "active":
            raise Unauthenticated(f"organisation {record['org']} is not active",
                                  code="org_inactive")
        caller = Caller(str(org["id"]), key_id, frozenset(org["roles"]))
        return caller, bytes.fromhex(record["public_key"])

    # -- requests -----------------------------------------------------------------

    def authenticate(self, signed: SignedRequest, *, method: str, target: str, body: bytes,
                     now: datetime) -> Caller:
        caller, public = self.caller_for_key(signed.key_id)
        check_request(signed, public, chain_id=self.node.chain_id, method=method,
                      target=target, body=body, now=now)
        self.nonces.use(signed.key_id, signed.nonce)
        return caller

    # -- explorer sessions ----------------------------------------------------------

    def open_session(self, token_text: str, now: datetime) -> str:
        """Check a one-time sign-in token; return a new session id."""
        token = parse_session_token(token_text)
        _caller, public = self.caller_for_key(token.key_id)
        check_session_token(token, public, chain_id=self.node.chain_id, now=now)
        # A token opens one session only.
        self.nonces.use(token.key_id, "session:" + token.nonce)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._expire_sessions()
            self._sessions[session_id] = Session(token.key_id,
                                                 time.monotonic()
                                                 + SESSION_LIFETIME.total_seconds())
        return session_id

    def session_caller(self, session_id: str) -> Caller | None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if time.monotonic() > session.expires:
                del self._sessions[session_id]
                return None
        try:
            caller, _public = self.caller_for_key(session.caller_key)
        except Unauthenticated:  # revoked since sign-in: the session ends
            self.close_session(session_id)
            return None
        return caller

    def close_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]


def request_target(request: Request) -> str:
    """The request target as the client sent it: raw path and query string."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    query = request.scope.get("query_string") or b""
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, at most ``max_bytes``; kept on the request for the route."""
    cached = getattr(request, "_body", None)
    if isinstance(cached, bytes):
        return cached
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise MalformedRecord(f"request body exceeds {max_bytes} bytes", field="body",
                                  rule="max_bytes", code="too_large")
    request._body = raw
    return raw


async def optional_member(request: Request) -> Caller | None:
    """The signed-in member, or ``None`` for an anonymous request."""
    auth: Authenticator = request.app.state.auth
    headers = {k.lower(): v for k, v in request.headers.items()}
    signed = parse_headers(headers)
    if signed is None:
        return None
    body = await read_body(request, request.app.state.max_request_bytes)
    return auth.authenticate(signed, method=request.method, target=request_target(request),
                             body=body, now=auth.node.clock.now())


async def member(request: Request) -> Caller:
    """The signed-in member; anonymous requests get 401 ``unauthenticated``."""
    caller = await optional_member(request)
    if caller is None:
        raise Unauthenticated("this endpoint needs a signed member request (headers "
                              "TL-Key, TL-Time, TL-Nonce, TL-Signature; the SDK and CLI "
                              "sign with your key)")
    return caller


def session_member(request: Request) -> Caller | None:
    """The member signed in to the explorer through its session cookie, if any.

    Looked up once per request: a page and its layout both ask."""
    if hasattr(request.state, "session_caller"):
        known: Caller | None = request.state.session_caller
        return known
    auth: Authenticator = request.app.state.auth
    session_id = request.cookies.get(SESSION_COOKIE)
    caller = auth.session_caller(session_id) if session_id else None
    request.state.session_caller = caller
    return caller
