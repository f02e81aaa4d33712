"""The block explorer: server-rendered HTML pages over the node's chain.

Routes (none of them in the OpenAPI schema):

* ``GET /explorer/login?token=``: a one-time sign-in link made by
  ``tradeledger explorer login`` opens a session (an HttpOnly cookie);
  ``GET /explorer/logout`` ends it. Every other page needs a session: an
  anonymous visitor sees how to sign in (HTTP 401);
* ``GET /`` and ``GET /explorer``: chain, head and the latest blocks
  (``?before=H`` pages back through older ones);
* ``GET /explorer/search?q=``: a height or a transaction id, redirected to its page;
* ``GET /explorer/block/{height}``: a header, its certificate and its transactions;
* ``GET /explorer/tx/{tx_id}``: a transaction's status; a committed one comes with
  its body, signatures and proof bundle, which ``static/verify.js`` checks in the
  browser against the embedded genesis file (the steps of ``client/verify.py``);
* ``/static``: the stylesheet and the verifier script.

Pages hold no ledger logic: they read through :class:`LedgerNode` and render.
Each page builds its context in one ``*_context`` method; a :class:`PageError`
raised anywhere in it becomes an HTML error page with its status. Every
transaction a page shows is read in :meth:`Explorer.block_txs` or
:meth:`Explorer.tx_context` through the node's need-to-know reads
(specs/read-policy.md): a member sees the records its organisation is a
party to and the public ones; any other record is "not found".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ledger.contracts import Keys
from ledger.encoding import loads
from ledger.errors import LedgerError, NotFound
from ledger.store import StoredTx
from node.auth import SESSION_COOKIE, SESSION_LIFETIME, Authenticator, Caller, session_member
from node.service import LedgerNode

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
PAGE_SIZE = 20

TX_ID_RE = re.compile(r"^[0-9a-f]{64}$")
HEIGHT_RE = re.compile(r"^[0-9]{1,18}$")

# The pages load scripts and styles from /static only; the embedded JSON
# (<script type="application/json">) is data, never executed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class BlockLine:
    """One row of a block list."""

    height: int
    hash: str
    time: str
    tx_count: int


@dataclass(frozen=True)
class TxLine:
    """One row of a block's transaction list."""

    seq: int
    tx_id: str
    type: str
    author: str
    org: str | None


class PageError(Exception):
    """A request the explorer answers with an HTML error page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def short(value: str, size: int = 16) -> str:
    """A hash prefix for tables; the full value stays in the link target."""
    return value if len(value) <= size else value[:size] + "…"


def when(value: str) -> str:
    """RFC 3339 UTC ``2026-01-05T09:00:00.123Z`` as ``2026-01-05 09:00:00 UTC``."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z", value)
    return f"{match.group(1)} {match.group(2)} UTC" if match else value


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)  # autoescapes .html
    templates.env.filters["short"] = short
    templates.env.filters["when"] = when
    return templates


def parse_height(text: str) -> int:
    if not HEIGHT_RE.fullmatch(text):
        raise PageError(400, "Not a block height",
                        f"“{text}” is not a block height: heights are whole numbers from 0.")
    return int(text)


def parse_tx_id(text: str) -> str:
    if not TX_ID_RE.fullmatch(text):
        raise PageError(400, "Not a transaction id",
                        f"“{text}” is not a transaction id: a transaction id is 64 "
                        "lower-case hexadecimal digits (the SHA-256 of its body).")
    return text


class Explorer:
    """The page handlers around one node."""

    def __init__(self, node: LedgerNode) -> None:
        self.node = node
        self.templates = _templates()
        payload = node.genesis.tx.body.payload
        self.chain_name = str(payload.get("name", node.chain_id))
        quorum = payload.get("quorum", {})
        self.validators: list[str] = list(quorum.get("validators", []))
        self.threshold = int(quorum.get("threshold", 0))
        self.org_names = {str(o["id"]): str(o.get("name", o["id"]))
                          for o in payload.get("organisations", [])}

    # -- rendering ------------------------------------------------------------

    def render(self, request: Request, name: str, context: dict[str, Any],
               status_code: int = 200) -> HTMLResponse:
        caller = session_member(request)
        context = {"chain_id": self.node.chain_id, "chain_name": self.chain_name,
                   "caller": caller,
                   "caller_name": self.org_names.get(caller.org, caller.org) if caller else "",
                   **context}
        return self.templates.TemplateResponse(request, name, context, status_code=status_code,
                                               headers=SECURITY_HEADERS)

    def error_page(self, request: Request, error: PageError) -> HTMLResponse:
        return self.render(request, "error.html", {"status": error.status,
                                                   "title": error.title,
                                                   "message": error.message},
                           status_code=error.status)

    # -- reads ----------------------------------------------------------------

    def block_lines(self, before: int | None) -> list[BlockLine]:
        if before is None:
            rows = self.node.store.latest_blocks(PAGE_SIZE)
        else:
            rows = self.node.store.block_rows(max(0, before - PAGE_SIZE), before)[::-1]
        lines = []
        for row in rows:
            header = loads(row.header)
            lines.append(BlockLine(row.height, row.hash, str(header["time"]), row.tx_count))
        return lines

    def author_org(self, key_id: str) -> str | None:
        record = self.node.store.get(Keys.key(key_id))
        return str(record["org"]) if isinstance(record, dict) and "org" in record else None

    def block_txs(self, caller: Caller, height: int) -> list[StoredTx]:
        """The transactions of a block that the caller may read."""
        return self.node.readable_txs(caller.org, self.node.store.txs_in_block(height))

    # -- pages ----------------------------------------------------------------

    def page(self, request: Request, name: str,
             build: Callable[[Caller], dict[str, Any]]) -> HTMLResponse:
        """Render ``name`` with ``build(caller)`` for a signed-in member; a
        :class:`PageError` becomes its HTML page, an anonymous visitor gets the
        sign-in page."""
        caller = session_member(request)
        if caller is None:
            return self.render(request, "signin.html", {}, status_code=401)
        try:
            context = build(caller)
        except PageError as exc:
            return self.error_page(request, exc)
        return self.render(request, name, context)

    def index(self, request: Request, before: str | None = None) -> HTMLResponse:
        return self.page(request, "index.html", lambda _c: self.index_context(before))

    def block(self, request: Request, height: str) -> HTMLResponse:
        return self.page(request, "block.html", lambda c: self.block_context(c, height))

    def transaction(self, request: Request, tx_id: str) -> HTMLResponse:
        return self.page(request, "tx.html", lambda c: self.tx_context(c, tx_id))

    def login(self, request: Request, token: str = "") -> Response:
        """Exchange a one-time sign-in link for a session cookie."""
        auth: Authenticator = request.app.state.auth
        try:
            session_id = auth.open_session(token, self.node.clock.now())
        except LedgerError as exc:
            return self.error_page(request, PageError(
                401, "Sign-in failed", f"{exc.message}. Make a new link with "
                "“tradeledger explorer login”."))
        response = RedirectResponse("/explorer", status_code=303)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict",
                            max_age=int(SESSION_LIFETIME.total_seconds()), path="/")
        return response

    def logout(self, request: Request) -> Response:
        auth: Authenticator = request.app.state.auth
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            auth.close_session(session_id)
        response = RedirectResponse("/explorer", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def index_context(self, before: str | None) -> dict[str, Any]:
        upper = None if before is None else parse_height(before)
        blocks = self.block_lines(upper)
        older = blocks[-1].height if blocks and blocks[-1].height > 0 else None
        return {"head": self.node.head.to_wire(), "blocks": blocks, "older": older,
                "paged": upper is not None, "validators": self.validators,
                "threshold": self.threshold}

    def block_context(self, caller: Caller, height: str) -> dict[str, Any]:
        h = parse_height(height)
        head = self.node.head.height
        row = self.node.store.block_row(h) if h <= head else None
        if row is None:
            raise PageError(404, "Block not found",
                            f"This node has no block at height {h} (its head is at "
                            f"height {head}).")
        orgs: dict[str, str | None] = {}
        txs = []
        for t in self.block_txs(caller, h):
            if t.author not in orgs:
                orgs[t.author] = self.author_org(t.author)
            txs.append(TxLine(t.seq, t.tx_id, t.type, t.author, orgs[t.author]))
        cert = self.node.store.certificate(h)
        return {"height": h, "hash": row.hash, "header": loads(row.header),
                "certificate": cert.to_wire() if cert else None, "txs": txs,
                "tx_count": row.tx_count,
                "is_head": h == head, "validators": self.validators,
                "threshold": self.threshold, "org_names": self.org_names}

    def tx_context(self, caller: Caller, tx_id: str) -> dict[str, Any]:
        parse_tx_id(tx_id)
        try:
            status = self.node.status_for(caller.org, tx_id)
        except NotFound as exc:
            raise PageError(404, "Transaction not found", exc.message) from exc
        context: dict[str, Any] = {"tx_id": tx_id, "status": status}
        if status.status != "committed":
            return context
        stored = self.node.readable_tx(caller.org, tx_id)
        body = loads(stored.body)
        bundle = self.node.inclusion_bundle_of(stored)
        context.update(
            body=body,
            body_json=json.dumps(body, indent=2, ensure_ascii=False),
            author_org=self.author_org(stored.author),
            signatures=[(s.key_id, self.author_org(s.key_id), s.signature.hex())
                        for s in stored.signatures],
            bundle=bundle,
            bundle_json=json.dumps(bundle, indent=2, ensure_ascii=False),
            genesis=self.node.genesis.to_wire(),
        )
        return context

    def search(self, request: Request, q: str = "") -> Response:
        text = q.strip().lower()
        if HEIGHT_RE.fullmatch(text):
            return RedirectResponse(f"/explorer/block/{int(text)}", status_code=303)
        if TX_ID_RE.fullmatch(text):
            return RedirectResponse(f"/explorer/tx/{text}", status_code=303)
        return self.error_page(request, PageError(
            400, "Nothing to look up",
            f"“{q}” is neither a block height (a whole number) nor a transaction id "
            "(64 hexadecimal digits)."))


def install(app: FastAPI, node: LedgerNode) -> None:
    """Register the explorer pages and ``/static`` on ``app``."""
    explorer = Explorer(node)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    pages: list[tuple[str, Any]] = [
        ("/explorer/login", explorer.login),
        ("/explorer/logout", explorer.logout),
        ("/", explorer.index),
        ("/explorer", explorer.index),
        ("/explorer/search", explorer.search),
        ("/explorer/block/{height}", explorer.block),
        ("/explorer/tx/{tx_id}", explorer.transaction),
    ]
    for path, endpoint in pages:
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)
