"""``tradeledger epcis``: import GS1 EPCIS 2.0 documents as shipment scans.

``tradeledger epcis import FILE --key KEY`` checks the whole file locally first
(the same validator the node runs, so a bad document is refused before anything
is sent, naming the field), then submits its events as ``shipments.capture``
transactions in batches through :class:`client.sdk.Client`, with a progress bar,
and waits until each transaction is committed or rejected (specs/shipments.md#import).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from client.cli_common import JsonOpt, NodeOpt, _emit, _fail, _member_key, err
from ledger.errors import LedgerError

app = typer.Typer(help="Import and query GS1 EPCIS 2.0 shipment scans.", no_args_is_help=True)

#: Most events per transaction (the contract's limit is 1,000).
EVENTS_PER_TX = 200
#: Most transactions per HTTP batch (the node's default limit is 1,000).
TXS_PER_REQUEST = 10
#: Request bodies stay under the node's 4 MiB limit with room for signatures.
MAX_REQUEST_BYTES = 3 * 1024 * 1024


def split_document(doc: dict[str, Any], events_per_tx: int) -> Iterator[dict[str, Any]]:
    """The capture payloads for ``doc``: a single event as it is; a document's events
    in EPCISDocuments of at most ``events_per_tx`` events, each with the original
    header fields (``@context``, ``schemaVersion``, ``creationDate``, ``epcisHeader`` ...)."""
    kind = doc.get("type")
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        yield doc
        return
    if kind == "EPCISDocument":
        events = doc["epcisBody"]["eventList"]
        header = {k: v for k, v in doc.items() if k != "epcisBody"}
    else:
        events = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        header = {k: v for k, v in doc.items() if k not in ("epcisBody", "type")}
        header["type"] = "EPCISDocument"
        header.setdefault("creationDate", doc.get("creationDate", "1970-01-01T00:00:00Z"))
    for start in range(0, len(events), events_per_tx):
        yield {**header, "epcisBody": {"eventList": events[start:start + events_per_tx]}}


def _count(payload: dict[str, Any]) -> int:
    body = payload.get("epcisBody")
    return len(body["eventList"]) if isinstance(body, dict) else 1


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="An EPCISDocument, EPCISQueryDocument or one "
                                              "event, as JSON-LD ('-': stdin).")],
    key: Annotated[Path, typer.Option(envvar="TRADELEDGER_KEY",
                                      help="The recording organisation's member key file.")],
    node: NodeOpt = "http://127.0.0.1:8700",
    chain_id: Annotated[str, typer.Option(envvar="TRADELEDGER_CHAIN")] = "",
    events_per_tx: Annotated[int, typer.Option(min=1, max=1000)] = EVENTS_PER_TX,
    txs_per_request: Annotated[int, typer.Option(min=1, max=1000)] = TXS_PER_REQUEST,
    as_json: JsonOpt = False,
) -> None:
    """Validate FILE, submit its events in batches, wait for each to commit."""
    from client.sdk import Client, NodeError, TxBuilder
    from ledger.epcis import validate_document

    # 1. Read and validate the whole file before sending anything.
    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _fail(f"{file} is not JSON: {exc}") from exc
    try:
        total = len(validate_document(doc))
    except LedgerError as exc:
        raise _fail(f"{file}: {exc.message}") from exc
    author = _member_key(key)

    # 2. Sign one capture transaction per chunk and submit them in batches.
    results: list[dict[str, Any]] = []
    with Client(node, key=author, chain_id=chain_id or None) as client:
        try:
            builder = TxBuilder(author, chain_id=client.chain_id)
            columns = (TextColumn("[bold]importing[/bold]"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("events"), TimeRemainingColumn())
            with Progress(*columns, console=err, disable=as_json, transient=False) as bar:
                task = bar.add_task("import", total=total)
                pending: list[tuple[Any, int]] = []
                size = 0

                def flush() -> None:
                    nonlocal size
                    if not pending:
                        return
                    answers = client.submit_batch([tx for tx, _n in pending])
                    for (tx, n), answer in zip(pending, answers, strict=True):
                        results.append({"tx_id": tx.tx_id_hex, "events": n, **answer})
                    pending.clear()
                    size = 0

                for payload in split_document(doc, events_per_tx):
                    tx = builder.build("shipments.capture", {"epcis": payload})
                    tx_bytes = len(json.dumps(tx.to_wire()))
                    if pending and (len(pending) >= txs_per_request
                                    or size + tx_bytes > MAX_REQUEST_BYTES):
                        flush()
                    pending.append((tx, _count(payload)))
                    size += tx_bytes
                    bar.advance(task, _count(payload) / 2)
                flush()
                # 3. Wait for every queued transaction.
                for result in results:
                    if result["status"] == "pending":
                        result.update(client.wait(result["tx_id"], timeout=120))
                    bar.advance(task, result["events"] / 2)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    committed = sum(r["events"] for r in results if r["status"] == "committed")
    failed = [r for r in results if r["status"] != "committed"]
    summary = {"events": total, "transactions": len(results), "committed_events": committed,
               "failed": [{k: r.get(k) for k in ("tx_id", "status", "code", "message", "field")
                           if r.get(k) is not None} for r in failed]}
    table = Table("events", "transactions", "committed events", "failed transactions")
    table.add_row(str(total), str(len(results)), str(committed), str(len(failed)))
    _emit(summary, as_json, table)
    if not as_json:
        for r in failed:
            err.print(f"[red]{r['status']}[/red] {r['tx_id']}: {r.get('code')}: "
                      f"{r.get('message')}")
    if failed:
        raise typer.Exit(3)



@app.command("events")
def events(
    key: Annotated[Path, typer.Option(envvar="TRADELEDGER_KEY",
                                      help="Your member key file (you see your events).")],
    epc: Annotated[str | None, typer.Option(help="An EPC URN or Digital Link URI.")] = None,
    location: Annotated[str | None, typer.Option(help="A readPoint or bizLocation.")] = None,
    biz_transaction: Annotated[str | None, typer.Option(help="A business transaction URI.")
                               ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    output: Annotated[Path | None, typer.Option("--out", help="Write the document here.")
                      ] = None,
    node: NodeOpt = "http://127.0.0.1:8700",
) -> None:
    """Export the events of one EPC, location or business transaction that your
    organisation may see, as an EPCIS 2.0 EPCISQueryDocument (JSON-LD)."""
    from client.sdk import Client, NodeError

    params = {k: v for k, v in (("epc", epc), ("location", location),
                                ("biz_transaction", biz_transaction)) if v is not None}
    if len(params) != 1:
        raise _fail("give exactly one of --epc, --location, --biz-transaction")
    with Client(node, key=_member_key(key)) as client:
        try:
            doc = client.get("/v1/epcis/events", **params, limit=limit)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        count = len(doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
        err.print(f"wrote {count} events to {output}")
