"""``tradeledger confidential``: seal trade details, open them, see the node's check.

Sealing and opening happen here, on the member's machine, with the keys it
holds; the node only ever sees the sealed object (specs/trade.md#sealing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from client.cli_common import (
    JsonOpt,
    NodeOpt,
    ReaderKeyOpt,
    _emit,
    _fail,
    _member_key,
    _passphrase,
    out,
)
from ledger.errors import LedgerError

app = typer.Typer(help="Seal and open the confidential details of orders and invoices.",
                  no_args_is_help=True)


@app.command("seal")
def seal_cmd(
    details: Annotated[Path, typer.Argument(help="JSON file with the details ('-': stdin).")],
    to: Annotated[list[str], typer.Option("--to", help="Receiving organisation (repeat).")],
    genesis: Annotated[Path, typer.Option(help="The genesis file naming their keys.")],
) -> None:
    """Print the ``confidential`` object for a payload: the details sealed to ``--to``."""
    from client.confidential import encryption_keys, seal

    text = sys.stdin.read() if str(details) == "-" else details.read_text(encoding="utf-8")
    try:
        keys = encryption_keys(genesis.read_bytes())
        missing = [org for org in to if org not in keys]
        if missing:
            raise _fail(f"the genesis file has no encryption key for {', '.join(missing)}")
        _emit(seal(json.loads(text), {org: keys[org] for org in to}), True)
    except (LedgerError, ValueError, OSError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc


@app.command("open")
def open_cmd(
    tx_id: str,
    org: Annotated[str, typer.Option(help="Your organisation.")],
    encryption_key: Annotated[Path, typer.Option(
        "--encryption-key", help="Your organisation's encryption key file.")],
    key: ReaderKeyOpt,
    node: NodeOpt = "http://127.0.0.1:8700",
    as_json: JsonOpt = False,
) -> None:
    """Fetch a committed order or invoice, open your copy and check its commitment."""
    from client.confidential import open_record
    from client.sdk import Client, NodeError
    from ledger.keys import load_encryption_key

    try:
        secret = load_encryption_key(encryption_key, _passphrase())
        with Client(node, key=_member_key(key)) as client:
            details = open_record(client.tx(tx_id), org, secret)
    except NodeError as exc:
        raise _fail(str(exc)) from exc
    except LedgerError as exc:
        raise _fail(exc.message) from exc
    lines = details.get("line_items")
    if as_json or not isinstance(lines, list):
        _emit(details, True)
        return
    table = Table("sku", "description", "quantity", "unit", "unit price", title=tx_id)
    for line in lines:
        table.add_row(*(str(line.get(k, "")) for k in ("sku", "description", "quantity",
                                                        "unit", "unit_price")))
    out.print(table)
    for name in ("bank_terms", "notes"):
        if details.get(name):
            out.print(f"{name}: {details[name]}")


@app.command("check")
def check_cmd(tx_id: str, key: ReaderKeyOpt, node: NodeOpt = "http://127.0.0.1:8700",
              as_json: JsonOpt = False) -> None:
    """Show the node's check of its organisation's sealed copy. Exit 1 on a mismatch."""
    from client.sdk import Client, NodeError

    with Client(node, key=_member_key(key)) as client:
        try:
            result = client.confidential(tx_id)
        except NodeError as exc:
            raise _fail(str(exc)) from exc
    if as_json:
        _emit(result, True)
    else:
        table = Table("tx id", "org", "checked by node", "sealed to", "detail")
        table.add_row(result["tx_id"], result["org"], result["checked_by_node"],
                      ", ".join(result["sealed_to"]), result["detail"])
        out.print(table)
    if result["checked_by_node"] in ("mismatch", "unreadable"):
        raise typer.Exit(1)
