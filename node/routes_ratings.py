"""Buyer ratings over HTTP: the API, the signed attestation and the "check a buyer" page.

* ``GET /v1/ratings/{buyer}``: the buyer's payment index as of the head
  (specs/ratings.md#api);
* ``GET /v1/ratings/{buyer}/attestation``: the same, signed by this node's key
  with the head's header and finality certificate (specs/ratings.md#attestation);
* ``GET /explorer/rating?buyer=``: the supplier's page, in the explorer's style,
  with the trend drawn as server-side SVG (the CSP allows no inline script).

Readers are members holding the supplier or bank role, and the platform; the
output is the buyer's aggregates, never a supplier's or an invoice's identity.
No rule lives here: the rating is ``ledger.ratings.rating`` over the state of
exactly the head (:meth:`LedgerNode.read_at_head`), the statement is
``ledger.rating_attestation``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from ledger import rating_attestation
from ledger.access import Unauthenticated
from ledger.block import BlockHeader, Certificate, verify_certificate
from ledger.contracts import Keys
from ledger.contracts.membership import ORG_ID, validator_set
from ledger.encoding import canonical
from ledger.errors import (
    Conflict,
    MalformedRecord,
    NotFound,
    PermissionDenied,
    VerificationError,
)
from ledger.ratings import Insufficient, Rating, rating
from ledger.state import StateReader
from node.auth import Caller, member, session_member
from node.explorer import Explorer, PageError
from node.service import LedgerNode

#: Roles whose members may read a buyer's rating.
READER_ROLES = frozenset({"supplier", "bank", "platform"})
_ORG_RE = re.compile(ORG_ID)


def check_reader(caller: Caller) -> None:
    """403 ``rating_role_required`` unless the caller may read ratings."""
    if not caller.roles & READER_ROLES:
        held = ", ".join(sorted(caller.roles)) or "no role"
        raise PermissionDenied(
            f"ratings are readable by members holding the supplier or bank role, and by the "
            f"platform; {caller.org} holds {held}", code="rating_role_required")


def check_buyer_id(buyer: str) -> None:
    if not _ORG_RE.fullmatch(buyer):
        raise MalformedRecord("must be an organisation id (2-32 of a-z, 0-9 and '-', "
                              "starting with a letter or digit)", field="buyer", rule="org_id")


def _rating_at(state: StateReader, head: BlockHeader, buyer: str) -> Rating | Insufficient:
    if state.get_raw(Keys.org(buyer)) is None:
        raise NotFound(f"no organisation {buyer} is a member of this consortium",
                       code="unknown_org")
    return rating(state, buyer, head.time.date(), head.height)


def read_rating(node: LedgerNode, buyer: str) -> Rating | Insufficient:
    """The buyer's rating over the state of the head, as of the head's date."""
    check_buyer_id(buyer)
    return node.read_at_head(lambda state, head: _rating_at(state, head, buyer))


def read_attestation(node: LedgerNode, buyer: str) -> dict[str, Any]:
    """A signed attestation of the buyer's rating at the head (which must be final)."""
    check_buyer_id(buyer)

    def read(state: StateReader, head: BlockHeader) -> dict[str, Any]:
        result = _rating_at(state, head, buyer)
        cert = node.store.certificate(head.height)
        if cert is None:  # genesis: the trust anchor itself, certified by no one
            cert = Certificate(head.height, head.hash, ())
        elif head.height > 0:
            try:
                verify_certificate(head, cert, validator_set(state))
            except VerificationError as exc:
                raise Conflict(f"the head (height {head.height}) is not final yet, so an "
                               f"attestation of it could not be verified; retry shortly "
                               f"({exc.message})", code="not_final") from exc
        return rating_attestation.attest(result, head, cert, genesis_hash=node.genesis.hash,
                                         key=node.node_key, org=node.node_org)

    return node.read_at_head(read)


# -- the page --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartPoint:
    label: str
    months: int
    score: int | None
    invoices: int
    x: float
    y: float | None


@dataclass(frozen=True)
class TrendChart:
    """Geometry of the trend chart; the template draws it as SVG (no script)."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    points: tuple[ChartPoint, ...]
    segments: tuple[tuple[ChartPoint, ChartPoint], ...]
    bands: tuple[tuple[str, float, float], ...]  # (name, y, height)
    ticks: tuple[tuple[int, float], ...]


def trend_chart(result: Rating | Insufficient) -> TrendChart:
    """Scores over the last 24 (the rating itself), 12, 6 and 3 months, oldest span first."""
    width, height, left, top, right, bottom = 520, 220, 44, 12, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    spans: list[tuple[int, int | None, int]] = [
        (24, result.score if isinstance(result, Rating) else None,
         result.factors.invoices if isinstance(result, Rating) else result.invoices)]
    spans += [(t.months, t.score, t.invoices) for t in sorted(result.trend,
                                                              key=lambda t: -t.months)]
    pad = 36  # points sit inside the plot, so their labels fit
    step = (plot_w - 2 * pad) / (len(spans) - 1)

    def y_of(score: int) -> float:
        return top + (100 - score) * plot_h / 100

    points = tuple(ChartPoint(f"{months} months", months, score, invoices,
                              round(left + pad + i * step, 1),
                              None if score is None else round(y_of(score), 1))
                   for i, (months, score, invoices) in enumerate(spans))
    segments = tuple((a, b) for a, b in itertools.pairwise(points)
                     if a.y is not None and b.y is not None)
    bands = (("low", y_of(100), y_of(80) - y_of(100)),
             ("medium", y_of(80), y_of(50) - y_of(80)),
             ("high", y_of(50), y_of(0) - y_of(50)))
    ticks = tuple((s, round(y_of(s), 1)) for s in (0, 50, 80, 100))
    return TrendChart(width, height, left, top, plot_w, plot_h, points, segments, bands,
                      ticks)


BAND_TEXT = {"low": "Low risk of late payment", "medium": "Medium risk of late payment",
             "high": "High risk of late payment"}


class RatingPage:
    """The "check a buyer" page around one node."""

    def __init__(self, node: LedgerNode) -> None:
        self.node = node
        self.explorer = Explorer(node)

    def buyers(self) -> list[tuple[str, str]]:
        """(id, name) of the consortium's organisations holding the buyer role."""
        out = []
        for org in self.node.genesis.tx.body.payload.get("organisations", []):
            record = self.node.store.get(Keys.org(str(org["id"])))
            if isinstance(record, dict) and "buyer" in record.get("roles", []):
                out.append((str(org["id"]), str(record.get("name", org["id"]))))
        return out

    def context(self, caller: Caller, buyer: str | None) -> dict[str, Any]:
        try:
            check_reader(caller)
        except PermissionDenied as exc:
            raise PageError(403, "Not allowed to check buyers", exc.message) from exc
        context: dict[str, Any] = {"caller": caller, "buyers": self.buyers(),
                                   "buyer": buyer or "", "result": None}
        if not buyer:
            return context
        text = buyer.strip()
        try:
            result = read_rating(self.node, text)
        except MalformedRecord as exc:
            raise PageError(400, "Not an organisation id",
                            f"“{buyer}” is not an organisation id: ids are 2 to 32 lower-case "
                            "letters, digits and hyphens.") from exc
        except NotFound as exc:
            raise PageError(404, "Buyer not found", exc.message) from exc
        raw = self.node.store.get(Keys.org(text))
        name = str(raw.get("name", text)) if isinstance(raw, dict) else text
        context.update(buyer=text, buyer_name=name, result=result.to_wire(),
                       rated=isinstance(result, Rating), chart=trend_chart(result),
                       band_text=BAND_TEXT.get(result.band, "") if isinstance(result, Rating)
                       else "")
        return context

    def show(self, request: Request, buyer: str | None = None) -> HTMLResponse:
        """The page, for the member signed in to the explorer (its session)."""
        return self.explorer.page(request, "rating.html", lambda c: self.context(c, buyer))

    def attestation(self, request: Request, buyer: str) -> Response:
        """The attestation download behind the page's link, for the signed-in member."""
        caller = session_member(request)
        if caller is None:
            raise Unauthenticated("sign in to the explorer first (tradeledger explorer login)")
        check_reader(caller)
        return Response(canonical(read_attestation(self.node, buyer)),
                        media_type="application/json")


def install(app: FastAPI, node: LedgerNode) -> None:
    """Register the rating API, the attestation and the page on ``app``."""

    @app.get("/v1/ratings/{buyer}", tags=["ratings"])
    def get_rating(buyer: str, caller: Caller = Depends(member)) -> dict[str, Any]:
        """A buyer's payment index as of the head: score (or insufficient history),
        band, factors, trend over 3, 6 and 12 months, and the as-of height."""
        check_reader(caller)
        return read_rating(node, buyer).to_wire()

    @app.get("/v1/ratings/{buyer}/attestation", tags=["ratings"])
    def get_attestation(buyer: str, caller: Caller = Depends(member)) -> Response:
        """The rating signed by this node, with the head's header and finality
        certificate: verifiable offline against the genesis file alone. The body
        is the attestation's RFC 8785 bytes: keep them exactly as served."""
        check_reader(caller)
        return Response(canonical(read_attestation(node, buyer)),
                        media_type="application/json")

    page = RatingPage(node)
    app.add_api_route("/explorer/rating", page.show, methods=["GET"], include_in_schema=False,
                      response_class=HTMLResponse)
    app.add_api_route("/explorer/rating/{buyer}/attestation", page.attestation,
                      methods=["GET"], include_in_schema=False)


