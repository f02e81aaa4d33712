"""The Python SDK: build, sign, submit, wait, fetch and verify proofs.

The transport is an injected ``httpx.Client`` (or ``httpx.AsyncClient``), so
tests pass the app's transport and production passes a configured client.
Every proof bundle is verified offline against the genesis file the caller
holds, never against what the node says about itself.

A client made with a member ``key`` signs every request it sends
(specs/api.md#signed-requests): the node answers a member only with what its
organisation may read.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from client.verify import (
    BundleError,
    VerifiedRating,
    VerifiedRecord,
    verify_consistency_bundle,
    verify_inclusion_bundle,
    verify_rating_attestation,
)
from ledger.access import session_token, sign_request
from ledger.keys import SigningKey
from ledger.tx import SignedTx, add_signature, make_body, sign_tx


class NodeError(Exception):
    """The node answered with a problem response."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.code = str(problem.get("code", "http_error"))
        self.field = problem.get("field")
        super().__init__(f"{status} {self.code}: {problem.get('message', '')}")


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def _now() -> datetime:
    return datetime.now(UTC)


class RequestSigner(httpx.Auth):
    """An httpx auth flow that signs each request with a member key.

    Works for ``httpx.Client`` and ``httpx.AsyncClient`` alike; the body is
    read before signing, so the signature covers its hash.
    """

    requires_request_body = True

    def __init__(self, key: SigningKey, *, chain_id: str,
                 clock: Callable[[], datetime] = _now) -> None:
        self.key = key
        self.chain_id = chain_id
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = sign_request(self.key, chain_id=self.chain_id, method=request.method,
                               target=request.url.raw_path.decode("ascii"),
                               body=request.content, time=self.clock(),
                               nonce=secrets.token_urlsafe(18))
        request.headers.update(headers)
        yield request


def wait_ready(base_url: str, *, timeout: float, interval: float = 0.2) -> bool:
    """Poll the node's ``/ready`` until it answers 200; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False


def chain_id_of(genesis: bytes) -> str:
    """The chain id a genesis file names (read, not verified: verification is
    what the proof checks do)."""
    value = json.loads(genesis)["header"]["chain_id"]
    return str(value)


class TxBuilder:
    """Builds and signs transactions for one author on one chain."""

    def __init__(self, key: SigningKey, *, chain_id: str, ttl: timedelta = timedelta(hours=1)
                 ) -> None:
        self.key = key
        self.chain_id = chain_id
        self.ttl = ttl

    def build(self, tx_type: str, payload: Mapping[str, Any], *,
              cosigners: Sequence[SigningKey] = (), nonce: str | None = None,
              created_at: datetime | None = None) -> SignedTx:
        body = make_body(tx_type=tx_type, chain_id=self.chain_id, author=self.key,
                         payload=payload, nonce=nonce or new_nonce(),
                         created_at=created_at or datetime.now(UTC).replace(microsecond=0),
                         ttl=self.ttl)
        return sign_tx(body, [self.key, *cosigners])

    @staticmethod
    def countersign(tx: SignedTx, key: SigningKey) -> SignedTx:
        return add_signature(tx, key)


def _raise_for(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"code": "http_error", "message": response.text[:200]}
        raise NodeError(response.status_code, problem)
    return response.json()


# Longest hold asked of the node for one status request (it allows 30 s).
LONG_POLL = 10.0


def _hold(remaining: float, http: httpx.Client | httpx.AsyncClient) -> float:
    """Seconds to ask the node to hold a status request: what is left of the
    caller's timeout, within LONG_POLL and half the HTTP read timeout."""
    read = http.timeout.read
    cap = LONG_POLL if read is None else min(LONG_POLL, read / 2)
    return round(max(0.0, min(remaining, cap)), 3)


def _wire(tx: SignedTx | Mapping[str, Any]) -> Any:
    return tx.to_wire() if isinstance(tx, SignedTx) else dict(tx)


class Client:
    """A synchronous client of one node.

    ``genesis`` is the genesis file's bytes, obtained out of band; proofs are
    checked against it. Without it, :meth:`verified_record` refuses to work.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8700", *,
                 http: httpx.Client | None = None, genesis: bytes | None = None,
                 key: SigningKey | None = None, chain_id: str | None = None,
                 timeout: float = 30.0) -> None:
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.genesis = genesis
        self.key = key
        self._chain_id = chain_id or (chain_id_of(genesis) if genesis else None)
        self._signer: RequestSigner | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_key(self, key: SigningKey) -> Client:
        """A client on the same connection that signs as ``key`` (do not close it
        separately: it shares this client's transport)."""
        return Client(http=self.http, genesis=self.genesis, key=key, chain_id=self._chain_id)

    @property
    def chain_id(self) -> str:
        """The node's chain id (from the genesis given, else asked of the node once)."""
        if self._chain_id is None:
            self._chain_id = chain_id_of(self.fetch_genesis())
        return self._chain_id

    def _auth(self) -> httpx.Auth | None:
        if self.key is None:
            return None
        if self._signer is None:
            self._signer = RequestSigner(self.key, chain_id=self.chain_id)
        return self._signer

    def get(self, path: str, **params: Any) -> Any:
        """A signed GET of any ``/v1`` path; the JSON answer, or :class:`NodeError`."""
        return _raise_for(self.http.get(path, params=params or None, auth=self._auth()))

    def post(self, path: str, body: Any) -> Any:
        """A signed POST of a JSON body to any ``/v1`` path."""
        return _raise_for(self.http.post(path, json=body, auth=self._auth()))

    def submit(self, tx: SignedTx | Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post("/v1/tx", _wire(tx))
        return result

    def submit_batch(self, txs: Sequence[SignedTx | Mapping[str, Any]]) -> list[dict[str, Any]]:
        body = {"transactions": [_wire(t) for t in txs]}
        results: list[dict[str, Any]] = self.post("/v1/tx/batch", body)["results"]
        return results

    def tx(self, tx_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/tx/{tx_id}")
        return result

    def confidential(self, tx_id: str) -> dict[str, Any]:
        """The node's check of its organisation's sealed copy (``checked_by_node``)."""
        result: dict[str, Any] = self.get(f"/v1/tx/{tx_id}/confidential")
        return result

    def records(self, *, before: int | None = None, limit: int = 50,
                tx_type: str | None = None) -> dict[str, Any]:
        """Newest first: the records the key's organisation may read."""
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if tx_type:
            params["type"] = tx_type
        result: dict[str, Any] = self.get("/v1/records", **params)
        return result

    def block(self, height: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/blocks/{height}")
        return result

    def explorer_login_url(self, *, lifetime: timedelta = timedelta(minutes=2)) -> str:
        """A one-time link that opens the node's explorer for the key's organisation."""
        if self.key is None:
            raise ValueError("a member key is needed to sign in")
        token = session_token(self.key, chain_id=self.chain_id, now=_now(),
                              nonce=secrets.token_urlsafe(18), lifetime=lifetime)
        return f"{str(self.http.base_url).rstrip('/')}/explorer/login?token={token}"

    def wait(self, tx_id: str, *, timeout: float = 30.0, interval: float = 0.05
             ) -> dict[str, Any]:
        """The transaction's status once it is committed or rejected.

        Long polls (``GET /v1/tx/{tx_id}?wait=``): the node answers as soon as the
        block is finished. ``interval`` spaces the requests only if a node answers
        "pending" before the wait it was asked for has passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            asked = time.monotonic()
            hold = _hold(deadline - asked, self.http)
            status: dict[str, Any] = self.get(f"/v1/tx/{tx_id}", **({"wait": hold} if hold else {}))
            if status["status"] != "pending":
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tx_id} still pending after {timeout} s")
            if time.monotonic() - asked < hold:
                time.sleep(interval)

    def head(self) -> dict[str, Any]:
        result: dict[str, Any] = _raise_for(self.http.get("/v1/certificate/latest"))
        return result

    def fetch_genesis(self) -> bytes:
        response = self.http.get("/v1/genesis")
        _raise_for(response)
        return response.content

    def proof(self, tx_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/proof/tx/{tx_id}")
        return result

    def consistency(self, old_size: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/proof/consistency", old_size=old_size)
        return result

    def verified_record(self, tx_id: str) -> VerifiedRecord:
        """Fetch the inclusion bundle of ``tx_id`` and verify it offline."""
        if self.genesis is None:
            raise BundleError("no genesis file given: nothing to verify against")
        return verify_inclusion_bundle(self.genesis, self.proof(tx_id))

    def rating(self, buyer: str) -> dict[str, Any]:
        """The buyer's payment index as of the node's head (specs/ratings.md#api)."""
        result: dict[str, Any] = self.get(f"/v1/ratings/{buyer}")
        return result

    def rating_attestation(self, buyer: str) -> bytes:
        """The signed attestation of the buyer's rating, as the exact bytes to keep."""
        response = self.http.get(f"/v1/ratings/{buyer}/attestation", auth=self._auth())
        _raise_for(response)
        return response.content

    def verified_rating(self, buyer: str) -> VerifiedRating:
        """Fetch a rating attestation and verify it offline against the genesis file."""
        if self.genesis is None:
            raise BundleError("no genesis file given: nothing to verify against")
        return verify_rating_attestation(self.genesis, self.rating_attestation(buyer))

    def verify_extends(self, old_size: int, old_root: bytes) -> None:
        """Check that the node's certified log extends the one you saw."""
        if self.genesis is None:
            raise BundleError("no genesis file given: nothing to verify against")
        verify_consistency_bundle(self.genesis, self.consistency(old_size), old_root)

    def organisations(self) -> dict[str, Any]:
        """Every organisation, the quorum and the consortium policy."""
        result: dict[str, Any] = self.get("/v1/orgs")
        return result

    def organisation(self, org_id: str) -> dict[str, Any]:
        """One organisation and its keys, each with its status at the node's head."""
        result: dict[str, Any] = self.get(f"/v1/orgs/{org_id}")
        return result

    def proposals(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/v1/governance/proposals")["proposals"]
        return result

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        """A governance proposal and its votes."""
        result: dict[str, Any] = self.get(f"/v1/governance/proposals/{proposal_id}")
        return result


class AsyncClient:
    """The asynchronous twin of :class:`Client`."""

    def __init__(self, base_url: str = "http://127.0.0.1:8700", *,
                 http: httpx.AsyncClient | None = None, genesis: bytes | None = None,
                 key: SigningKey | None = None, chain_id: str | None = None,
                 timeout: float = 30.0) -> None:
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.genesis = genesis
        self.key = key
        self._chain_id = chain_id or (chain_id_of(genesis) if genesis else None)
        self._signer: RequestSigner | None = None

    async def _auth(self) -> httpx.Auth | None:
        if self.key is None:
            return None
        if self._signer is None:
            if self._chain_id is None:
                response = await self.http.get("/v1/genesis")
                _raise_for(response)
                self._chain_id = chain_id_of(response.content)
            self._signer = RequestSigner(self.key, chain_id=self._chain_id)
        return self._signer

    async def get(self, path: str, **params: Any) -> Any:
        return _raise_for(await self.http.get(path, params=params or None,
                                              auth=await self._auth()))

    async def post(self, path: str, body: Any) -> Any:
        return _raise_for(await self.http.post(path, json=body, auth=await self._auth()))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def submit(self, tx: SignedTx | Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/v1/tx", _wire(tx))
        return result

    async def submit_batch(self, txs: Sequence[SignedTx | Mapping[str, Any]]
                           ) -> list[dict[str, Any]]:
        body = {"transactions": [_wire(t) for t in txs]}
        results: list[dict[str, Any]] = (await self.post("/v1/tx/batch", body))["results"]
        return results

    async def tx(self, tx_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v1/tx/{tx_id}")
        return result

    async def wait(self, tx_id: str, *, timeout: float = 30.0, interval: float = 0.05
                   ) -> dict[str, Any]:
        """:meth:`Client.wait`, awaiting."""
        deadline = time.monotonic() + timeout
        while True:
            asked = time.monotonic()
            hold = _hold(deadline - asked, self.http)
            status: dict[str, Any] = await self.get(f"/v1/tx/{tx_id}",
                                                    **({"wait": hold} if hold else {}))
            if status["status"] != "pending":
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tx_id} still pending after {timeout} s")
            if time.monotonic() - asked < hold:
                await asyncio.sleep(interval)

    async def proof(self, tx_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v1/proof/tx/{tx_id}")
        return result

    async def verified_record(self, tx_id: str) -> VerifiedRecord:
        if self.genesis is None:
            raise BundleError("no genesis file given: nothing to verify against")
        return verify_inclusion_bundle(self.genesis, await self.proof(tx_id))
