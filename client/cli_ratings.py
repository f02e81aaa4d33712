"""``tradeledger rating BUYER`` and ``tradeledger attestation verify FILE``.

A supplier checks a buyer before extending credit: the table (or ``--json``)
shows the score or "insufficient history", the band, the factors, the trend
and the as-of height. ``--attest FILE`` saves the node's signed attestation
of that rating as evidence, verified first against ``--genesis`` when given;
``attestation verify`` (or ``proof verify``) checks a saved one offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from client.cli_common import JsonOpt, NodeOpt, ReaderKeyOpt, _emit, _fail, _member_key, err
from client.sdk import Client, NodeError
from client.verify import BundleError, VerifiedRating, verify_rating_attestation

attestation_app = typer.Typer(help="Verify signed rating attestations.", no_args_is_help=True)


def _client(node: str, key: Path) -> Client:
    return Client(node, key=_member_key(key))


def _money(minor: int | str) -> str:
    return f"{int(minor) / 100:,.2f} USD"


def rating_table(result: dict[str, Any]) -> Table:
    """The rating (the API's or an attestation's statement) as a two-column table."""
    table = Table("", "", title=f"Payment index of {result['buyer']}", show_header=False)
    if result["status"] == "rated":
        table.add_row("score", f"[bold]{result['score']}[/bold] / 100")
        table.add_row("band", f"{result['band']} risk of late payment")
        f = result["factors"]
        table.add_row("invoices", str(f["invoices"]))
        table.add_row("suppliers", str(f["suppliers"]))
        table.add_row("days beyond terms", str(f["days_beyond_terms"]))
        table.add_row("paid within terms", f"{f['within_terms_percent']} %")
        table.add_row("worst delay", f"{f['worst_delay_days']} days")
        table.add_row("amount weighed", _money(f["amount_usd_minor"]))
        table.add_row("suppliers capped", str(f["capped_suppliers"]))
    else:
        table.add_row("score", "[bold]insufficient history[/bold]")
        table.add_row("reason", str(result["reason"]))
        table.add_row("invoices", str(result["invoices"]))
        table.add_row("suppliers", str(result["suppliers"]))
    for point in result["trend"]:
        score = "insufficient" if point["score"] is None else str(point["score"])
        table.add_row(f"trend {point['months']} months",
                      f"{score} ({point['invoices']} invoices)")
    table.add_row("as of", f"{result['as_of']}, height {result['height']}")
    return table


def attestation_result(verified: VerifiedRating) -> dict[str, Any]:
    """What a verified attestation proves, for ``--json`` and the tables."""
    return {"valid": True, "kind": "rating-attestation", "buyer": verified.buyer,
            "status": verified.status, "score": verified.score, "band": verified.band,
            "invoices": verified.invoices, "suppliers": verified.suppliers,
            "reason": verified.reason, "factors": verified.factors, "trend": verified.trend,
            "as_of": verified.as_of, "height": verified.height,
            "header_hash": verified.header_hash, "signed_by": f"{verified.org} "
            f"(node key {verified.key_id})", "certified_by": list(verified.certified_by)}


def rating(
    buyer: Annotated[str, typer.Argument(help="The buyer's organisation id.")],
    key: ReaderKeyOpt,
    attest: Annotated[Path | None, typer.Option(
        "--attest", help="Save the node's signed attestation of the rating to this file.")
    ] = None,
    genesis: Annotated[Path | None, typer.Option(
        help="With --attest: verify the attestation against this genesis file first.")
    ] = None,
    node: NodeOpt = "http://127.0.0.1:8700",
    as_json: JsonOpt = False,
) -> None:
    """Check a buyer: score or insufficient history, band, factors, trend, as-of height."""
    with _client(node, key) as client:
        try:
            if attest is None:
                result = client.rating(buyer)
            else:
                raw = client.rating_attestation(buyer)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    if attest is not None:
        if genesis is not None:
            try:
                verify_rating_attestation(genesis.read_bytes(), raw)
            except (BundleError, OSError) as exc:
                raise _fail(f"the node's attestation does NOT verify, not saved: {exc}"
                            ) from exc
        if attest.exists():
            raise _fail(f"{attest} exists; refusing to overwrite evidence")
        attest.write_bytes(raw)
        err.print(f"wrote {attest} ({'verified' if genesis else 'not verified: no --genesis'})")
        result = json.loads(raw)["statement"]
    _emit(result, as_json, rating_table(result))


@attestation_app.command("verify")
def attestation_verify(
    attestation_file: Annotated[Path, typer.Argument(help="Rating attestation (JSON).")],
    genesis: Annotated[Path, typer.Option(help="The genesis file you trust.")],
    as_json: JsonOpt = False,
) -> None:
    """Verify a rating attestation offline against a genesis file. Exit 1 if it fails."""
    try:
        verified = verify_rating_attestation(genesis.read_bytes(),
                                             attestation_file.read_bytes())
    except (BundleError, OSError) as exc:
        if as_json:
            typer.echo(json.dumps({"valid": False, "error": str(exc)}))
        raise _fail(f"attestation does NOT verify: {exc}") from exc
    emit_verified(verified, as_json)


def emit_verified(verified: VerifiedRating, as_json: bool) -> None:
    result = attestation_result(verified)
    table = rating_table({**result, "status": verified.status})
    table.title = (f"[green]valid[/green] attestation by {result['signed_by']}, certified by "
                   f"{', '.join(verified.certified_by)}")
    _emit(result, as_json, table)


def install(app: typer.Typer) -> None:
    """Add ``rating`` and ``attestation`` to the ``tradeledger`` app."""
    app.command("rating")(rating)
    app.add_typer(attestation_app, name="attestation")
