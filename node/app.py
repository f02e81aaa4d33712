"""The node's HTTP API (specs/api.md). Versioned under ``/v1``.

Routes hold no business rules: they parse, call :class:`LedgerNode`, and let
``node.errors`` turn failures into problem responses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.chain import Genesis
from ledger.encoding import loads
from ledger.errors import MalformedRecord, NotFound
from ledger.keys import load_encryption_key, load_key
from ledger.store import Store
from node import (
    errors,
    explorer,
    routes_confidential,
    routes_epcis,
    routes_membership,
    routes_ratings,
)
from node.auth import Authenticator, Caller, member, read_body
from node.config import NodeConfig
from node.service import LedgerNode

API_VERSION = "v1"
# Longest long poll of GET /v1/tx/{tx_id}?wait= (seconds).
MAX_STATUS_WAIT = 30.0


class BodyLimit:
    """Refuse a declared body over the limit before anything reads it.

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every
    request in extra tasks and streams, which costs more than the check.
    Bodies sent without a length are bounded where they are read
    (node.auth.read_body).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name != b"content-length":
                    continue
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    response = errors.problem(400, "malformed", "content-length is not a number",
                                              field="content-length", rule="integer")
                    await response(scope, receive, send)
                    return
                if too_big:
                    response = errors.problem(413, "too_large",
                                              f"request body exceeds {self.max_bytes} bytes",
                                              field="body", rule="max_bytes")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)


async def _body(request: Request, max_bytes: int) -> bytes:
    """The request body, which must not be empty."""
    raw = await read_body(request, max_bytes)
    if not raw:
        raise MalformedRecord("a JSON body is required", field="body", rule="required")
    return raw


async def _json_body(request: Request, max_bytes: int) -> Any:
    return loads(await _body(request, max_bytes))


def create_app(node: LedgerNode, *, max_request_bytes: int = 4 * 1024 * 1024,
               max_batch: int = 1000, start_orderer: bool = True) -> FastAPI:
    """Build the app around a node (tests pass their own node)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_orderer:
            node.start()
        try:
            yield
        finally:
            node.stop()

    app = FastAPI(title="TradeLedger node", version="0.1.0", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.node = node
    app.state.auth = Authenticator(node)
    app.state.max_request_bytes = max_request_bytes
    errors.install(app)
    _body_limit(app, max_request_bytes)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    def ready() -> Response:
        head = node.head
        ok = node._thread is not None or not start_orderer
        body = {"ready": ok, "chain_id": node.chain_id, "height": head.height}
        return JSONResponse(body, status_code=200 if ok else 503)

    v1 = f"/{API_VERSION}"

    @app.post(f"{v1}/tx", status_code=202, tags=["transactions"],
              responses={200: {"description": "already known: its status"}})
    async def submit(request: Request, caller: Caller = Depends(member)) -> Response:
        """Submit one signed transaction. Idempotent: resubmitting returns its status.

        202 with ``{"status": "pending"}`` when queued; 200 with the existing
        status when the transaction was seen before.
        """
        wire = await _json_body(request, max_request_bytes)
        status = node.submit(wire)
        return _json(status.to_wire(), 202 if status.status == "pending" else 200)

    @app.post(f"{v1}/tx/batch", status_code=202, tags=["transactions"])
    async def submit_batch(request: Request, caller: Caller = Depends(member)) -> Response:
        """Submit up to ``max_batch`` transactions; each gets its own result."""
        raw = await _body(request, max_request_bytes)
        return _json({"results": await node.submit_body_async(raw, max_batch)}, 202)

    # Status polls are the node's hottest read: the answer is encoded here
    # (as FastAPI would encode it) rather than validated against the declared
    # model, and the route runs on the event loop: its two or three point
    # queries cost less than a hop to the thread pool.
    @app.get(f"{v1}/tx/{{tx_id}}", tags=["transactions"], response_model=dict[str, Any])
    async def get_tx(tx_id: str, caller: Caller = Depends(member),
                     wait: float = Query(0, ge=0, le=MAX_STATUS_WAIT, description=(
                         "seconds to hold the answer while the transaction is pending"))
                     ) -> Response:
        """A transaction's status; committed ones come with the transaction.

        Only for a party of the record (or a public record); a pending or refused
        transaction only for an organisation that signed it. Others get 404. With
        ``wait``, a pending status is answered when its block is finished, or
        after ``wait`` seconds.
        """
        _check_hex(tx_id, "tx_id")
        status = (await node.wait_status(caller.org, tx_id, wait) if wait > 0
                  else node.status_for(caller.org, tx_id))
        out = status.to_wire()
        if status.status == "committed":
            out["transaction"] = json.loads(node.stored_tx(tx_id).leaf_bytes())
        return JSONResponse(out)

    @app.get(f"{v1}/records", tags=["transactions"])
    def records(caller: Caller = Depends(member),
                before: int | None = Query(None, ge=0, description="log index to page back from"),
                limit: int = Query(50, ge=1, le=500),
                tx_type: str | None = Query(None, alias="type", max_length=64)
                ) -> dict[str, Any]:
        """Newest first: the records the caller's organisation is a party to, and public ones."""
        rows = node.store.seqs_for_party(caller.org, before=before, limit=limit,
                                         tx_type=tx_type)
        return {"records": [{"seq": t.seq, "tx_id": t.tx_id, "height": t.height,
                             "type": t.type, "author": t.author} for t in rows],
                "next_before": rows[-1].seq if len(rows) == limit else None}

    @app.get(f"{v1}/blocks", tags=["blocks"])
    def blocks(limit: int = Query(20, ge=1, le=200),
               _caller: Caller = Depends(member)) -> dict[str, Any]:
        rows = node.store.latest_blocks(limit)
        return {"blocks": [{"height": r.height, "hash": r.hash, "tx_count": r.tx_count,
                            "header": loads(r.header)} for r in rows]}

    @app.get(f"{v1}/blocks/{{height}}", tags=["blocks"])
    def block(height: int, caller: Caller = Depends(member)) -> dict[str, Any]:
        """A block's header and certificate, and those of its transactions the caller
        may read (``tx_count`` counts them all: the header's log size tells it anyway)."""
        row = node.store.block_row(height)
        if row is None:
            raise NotFound(f"no block at height {height}", code="unknown_block")
        cert = node.store.certificate(height)
        txs = node.readable_txs(caller.org, node.store.txs_in_block(height))
        return {"height": height, "hash": row.hash, "header": loads(row.header),
                "certificate": cert.to_wire() if cert else None, "tx_count": row.tx_count,
                "transactions": [{"seq": t.seq, "tx_id": t.tx_id, "type": t.type,
                                  "author": t.author} for t in txs]}

    @app.get(f"{v1}/headers/{{height}}", tags=["blocks"])
    def header(height: int, _caller: Caller = Depends(member)) -> dict[str, Any]:
        found = node.store.header(height)
        if found is None:
            raise NotFound(f"no block at height {height}", code="unknown_block")
        return found.to_wire()

    @app.get(f"{v1}/certificate/latest", tags=["blocks"])
    def latest_certificate() -> dict[str, Any]:
        head, cert = node.certified_head()
        return {"header": head.to_wire(), "certificate": cert.to_wire()}

    @app.get(f"{v1}/genesis", tags=["blocks"])
    def genesis() -> Response:
        return Response(node.genesis.to_bytes(), media_type="application/json")

    @app.get(f"{v1}/proof/tx/{{tx_id}}", tags=["proofs"])
    def inclusion(tx_id: str, caller: Caller = Depends(member)) -> dict[str, Any]:
        """A proof bundle: the record, its Merkle path, the header and certificate."""
        _check_hex(tx_id, "tx_id")
        return node.inclusion_bundle(tx_id, reader=caller.org)

    @app.get(f"{v1}/proof/consistency", tags=["proofs"])
    def consistency(old_size: int = Query(..., ge=1),
                    _caller: Caller = Depends(member)) -> dict[str, Any]:
        """Proof that today's certified log extends the log of size ``old_size``."""
        return node.consistency_bundle(old_size)

    routes_epcis.install(app, node)
    explorer.install(app, node)
    routes_membership.install(app, node)
    routes_confidential.install(app, node)
    routes_ratings.install(app, node)
    return app


def _json(body: Any, status: int) -> Response:
    # Encoded directly: these bodies are plain JSON already (strings and small
    # integers), and FastAPI's generic encoder costs more than the work behind a
    # large batch. orjson encodes a 500-item result list in 18 us, json.dumps in
    # 314 us.
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _check_hex(value: str, field: str) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise MalformedRecord("must be 64 lower-case hex digits", field=field, rule="hex")


def app_from_config(config: NodeConfig) -> FastAPI:
    """Open the store and keys named by ``config`` and build the app."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    genesis = Genesis.from_bytes(Path(config.genesis_path).read_bytes())
    key = load_key(config.node_key_path, config.passphrase)
    encryption = (None if config.encryption_key_path is None
                  else load_encryption_key(config.encryption_key_path, config.passphrase))
    store = Store(config.db_url)
    node = LedgerNode(store, genesis, node_key=key, node_org=config.node_org,
                      block_max_txs=config.block_max_txs, block_interval=config.block_interval,
                      max_pending=config.max_pending, encryption_key=encryption)
    return create_app(node, max_request_bytes=config.max_request_bytes,
                      max_batch=config.max_batch)


def main_app() -> FastAPI:  # uvicorn --factory node.app:main_app
    return app_from_config(NodeConfig.from_env())
